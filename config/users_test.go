package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestAccountEnv(t *testing.T) {
	dir := t.TempDir()
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	if err := os.WriteFile(passwd, []byte(testPasswd+"bare:x:2000:2000:no home or shell::\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(group, []byte(testGroup), 0o644); err != nil {
		t.Fatal(err)
	}
	// tend itself runs as root, with root's login variables.
	base := []string{"HOME=/root", "USER=root", "LOGNAME=root", "SHELL=/bin/bash", "PATH=/bin"}
	tests := []struct {
		name string
		keys string // the service's user, group and environment lines
		want []string
	}{
		{"no user keeps tend's own", "", []string{"HOME=/root", "LOGNAME=root", "PATH=/bin", "SHELL=/bin/bash", "USER=root"}},
		{"only a group keeps tend's own", `group = "audio"`, []string{"HOME=/root", "LOGNAME=root", "PATH=/bin", "SHELL=/bin/bash", "USER=root"}},
		{"nobody", `user = "nobody"`, []string{"HOME=/", "LOGNAME=nobody", "PATH=/bin", "SHELL=/sbin/nologin", "USER=nobody"}},
		{"a user by uid", `user = "1000"`, []string{"HOME=/home/app", "LOGNAME=app", "PATH=/bin", "SHELL=/bin/sh", "USER=app"}},
		{"root as root", `user = "root"`, []string{"HOME=/root", "LOGNAME=root", "PATH=/bin", "SHELL=/bin/sh", "USER=root"}},
		{"the group does not change them", "user = \"postgres\"\ngroup = \"audio\"", []string{"HOME=/var/lib/postgresql", "LOGNAME=postgres", "PATH=/bin", "SHELL=/bin/sh", "USER=postgres"}},
		{"empty home and shell fields", `user = "bare"`, []string{"HOME=/", "LOGNAME=bare", "PATH=/bin", "SHELL=/bin/sh", "USER=bare"}},
		{"a uid without an entry has no name", `user = "4242"`, []string{"HOME=/", "PATH=/bin"}},
		{"environment wins", "user = \"app\"\nenvironment = { HOME = \"/srv\", USER = \"svc\" }", []string{"HOME=/srv", "LOGNAME=app", "PATH=/bin", "SHELL=/bin/sh", "USER=svc"}},
		{"environment wins without an entry", "user = \"4242\"\nenvironment = { LOGNAME = \"x\" }", []string{"HOME=/", "LOGNAME=x", "PATH=/bin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "[services.s]\ncommand = \"s\"\n" + tt.keys + "\n"
			cfg, err := Parse("tend.toml", []byte(src), nil, WithBaseEnv(base), WithUserDB(passwd, group))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Services["s"].Env; !slices.Equal(got, tt.want) {
				t.Errorf("env = %q\n      want %q", got, tt.want)
			}
		})
	}
}

// Many services naming users read the user database once; each still gets
// its own user's answer.
func TestManyUsers(t *testing.T) {
	users := map[string]uint32{"a": 1000, "b": 70, "c": 65534, "d": 1000, "e": 1000, "f": 65534}
	names := map[string]string{"a": "app", "b": "postgres", "c": "nobody", "d": "app", "e": "1000", "f": "65534"}
	src := ""
	for _, s := range []string{"a", "b", "c", "d", "e", "f"} {
		src += "[services." + s + "]\ncommand = \"x\"\nuser = \"" + names[s] + "\"\n"
	}
	cfg := mustParse(t, src, nil)
	for name, uid := range users {
		if c := cfg.Services[name].Credential; c == nil || c.Uid != uid {
			t.Errorf("%s (user %s): %+v, want uid %d", name, names[name], c, uid)
		}
	}
}
