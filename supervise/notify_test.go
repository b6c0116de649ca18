package supervise

import (
	"strings"
	"testing"
)

func TestParseNotify(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]string
	}{
		{"READY=1", map[string]string{"READY": "1"}},
		{"READY=1\nSTATUS=serving on :80\nMAINPID=42\n", map[string]string{"READY": "1", "STATUS": "serving on :80", "MAINPID": "42"}},
		{"STATUS=a=b", map[string]string{"STATUS": "a=b"}},
		{"garbage\n=nokey\nREADY=1", map[string]string{"READY": "1"}},
		{"", map[string]string{}},
	}
	for _, c := range cases {
		got := parseNotify([]byte(c.in))
		if len(got) != len(c.want) {
			t.Errorf("%q: %v, want %v", c.in, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%q: %s=%q, want %q", c.in, k, got[k], v)
			}
		}
	}
}

// FuzzParseNotify: any datagram parses without a panic into keys without
// "=" or newlines and values without newlines, and taking it into a socket's
// pending fields keeps only the fields tend acts on.
func FuzzParseNotify(f *testing.F) {
	for _, s := range []string{"READY=1", "READY=1\nSTATUS=x\nMAINPID=7\n", "=\n==\n", "STATUS=\x00\xff", strings.Repeat("A=B\n", 100)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fields := parseNotify(b)
		for k, v := range fields {
			if k == "" || strings.ContainsAny(k, "=\n") || strings.Contains(v, "\n") {
				t.Fatalf("field %q=%q from %q", k, v, b)
			}
		}
		n := &notifySocket{latest: map[string]string{}}
		n.take(fields)
		for k := range n.latest {
			if k != "READY" && k != "STATUS" && k != "MAINPID" {
				t.Fatalf("kept %q", k)
			}
		}
	})
}
