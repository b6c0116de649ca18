package config

import (
	"slices"
	"testing"
)

func TestServiceEnv(t *testing.T) {
	b := newEnvBase([]string{"PATH=/bin", "HOME=/root", "A0=x", "USER=root", "A=1", "NOEQUALS", "=empty", "HOME=/root2", "SHELL=/bin/bash"})
	base := []string{"A=1", "A0=x", "HOME=/root2", "PATH=/bin", "SHELL=/bin/bash", "USER=root"}
	tests := []struct {
		name           string
		account, extra map[string]string
		want           []string
	}{
		{"nothing changed", nil, nil, base},
		{"extra overrides and adds", nil, map[string]string{"A": "2", "0FIRST": "f", "ZZ": "z", "M": "m"},
			[]string{"0FIRST=f", "A=2", "A0=x", "HOME=/root2", "M=m", "PATH=/bin", "SHELL=/bin/bash", "USER=root", "ZZ=z"}},
		{"an account replaces the four", map[string]string{"HOME": "/", "USER": "nobody", "LOGNAME": "nobody", "SHELL": "/sbin/nologin"}, nil,
			[]string{"A=1", "A0=x", "HOME=/", "LOGNAME=nobody", "PATH=/bin", "SHELL=/sbin/nologin", "USER=nobody"}},
		{"an account without a name drops the rest", map[string]string{"HOME": "/"}, nil,
			[]string{"A=1", "A0=x", "HOME=/", "PATH=/bin"}},
		{"extra over the account", map[string]string{"HOME": "/"}, map[string]string{"HOME": "/h", "USER": "u"},
			[]string{"A=1", "A0=x", "HOME=/h", "PATH=/bin", "USER=u"}},
	}
	for _, tt := range tests {
		got := b.serviceEnv(tt.account, tt.extra)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got  %q\n want %q", tt.name, got, tt.want)
		}
	}
	// Services that change nothing share one list, which cannot be appended to in place.
	a, c := b.serviceEnv(nil, nil), b.serviceEnv(nil, map[string]string{})
	if &a[0] != &c[0] || cap(a) != len(a) {
		t.Errorf("not shared: %p %p, cap %d len %d", &a[0], &c[0], cap(a), len(a))
	}
}
