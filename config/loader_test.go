package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A reload decodes only the files whose content changed and parses only
// the services they define or override; every other service is the same
// *Service as before. Asserted through the Loader's counters.
func TestLoaderReparsesOnlyWhatChanged(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"main.toml":      "include = [\"conf.d/*.toml\"]\n[services.base]\ncommand = \"base\"\n",
		"conf.d/a.toml":  "[services.a]\ncommand = \"a\"\n[services.a2]\ncommand = \"a2\"\n",
		"conf.d/b.toml":  "[services.b]\ncommand = \"b\"\ndepends_on = [\"a\"]\n",
		"conf.d/c.toml":  "[services.c]\ncommand = \"c\"\nuser = \"app\"\n",
		"conf.d/zz.toml": "[services.base]\noverride = \"merge\"\nenvironment = { X = \"1\" }\n",
	})
	l := testLoader(t, dir)
	write := func(name, body string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var prev *Config
	steps := []struct {
		name            string
		change          func()
		decodes, parses int      // in this load
		fresh           []string // the services parsed again; the others must be the same *Service
		wantErr         bool
	}{
		{"first load", func() {}, 5, 5, nil, false},
		{"nothing changed", func() {}, 0, 0, nil, false},
		{"one file rewritten with the same content", func() { write("conf.d/b.toml", "[services.b]\ncommand = \"b\"\ndepends_on = [\"a\"]\n") }, 0, 0, nil, false},
		{"one service changed", func() { write("conf.d/b.toml", "[services.b]\ncommand = \"b2\"\ndepends_on = [\"a\"]\n") }, 1, 1, []string{"b"}, false},
		{"a file of two services", func() { write("conf.d/a.toml", "[services.a]\ncommand = \"a\"\n[services.a2]\ncommand = \"a3\"\n") }, 1, 2, []string{"a", "a2"}, false},
		{"an override changed: the service it overrides", func() {
			write("conf.d/zz.toml", "[services.base]\noverride = \"merge\"\nenvironment = { X = \"2\" }\n")
		}, 1, 1, []string{"base"}, false},
		{"a new file", func() { write("conf.d/d.toml", "[services.d]\ncommand = \"d\"\n") }, 1, 1, []string{"d"}, false},
		{"the passwd file changed: the services with a user", func() {
			os.WriteFile(l.passwdFile(t), []byte(testPasswd+"extra:x:2000:2000::/:/bin/sh\n"), 0o644)
		}, 0, 1, []string{"c"}, false},
		{"an invalid included file: nothing is kept", func() { write("conf.d/b.toml", "[services.b]\ncommand = \"b3\"\nrestart = \"sometimes\"\n") }, 1, 1, nil, true},
		{"fixed again", func() { write("conf.d/b.toml", "[services.b]\ncommand = \"b3\"\n") }, 1, 1, []string{"b"}, false},
		{"a file removed", func() { os.Remove(filepath.Join(dir, "conf.d/d.toml")) }, 0, 0, nil, false},
		{"the main file changed: its services", func() {
			write("main.toml", "include = [\"conf.d/*.toml\"]\nlog_level = \"warn\"\n[services.base]\ncommand = \"base\"\n")
		}, 1, 1, []string{"base"}, false},
	}
	for _, st := range steps {
		st.change()
		decodes, parses := l.decodes, l.parses
		cfg, err := l.Load()
		if d, p := l.decodes-decodes, l.parses-parses; d != st.decodes || p != st.parses {
			t.Errorf("%s: %d files decoded, %d services parsed; want %d and %d", st.name, d, p, st.decodes, st.parses)
		}
		if st.wantErr {
			if err == nil {
				t.Fatalf("%s: no error", st.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if prev != nil {
			for name, svc := range cfg.Services {
				wantFresh := slices.Contains(st.fresh, name)
				if same := prev.Services[name] == svc; same == wantFresh {
					t.Errorf("%s: %s is the same *Service as before: %v; want it parsed again: %v", st.name, name, same, wantFresh)
				}
			}
		}
		prev = cfg
	}
	if _, ok := prev.Services["d"]; ok || prev.LogLevel != "warn" {
		t.Errorf("last config: %v, log_level %s", prev.Services, prev.LogLevel)
	}
}

// passwdFile is the passwd file the test loader reads.
func (l *Loader) passwdFile(t *testing.T) string {
	p := newParser(l.env, l.opts)
	return p.opts.passwdFile
}

// The first load's services, parsed from scratch, equal the reused ones
// of a later load: nothing in a parse depends on what came before.
func TestLoaderSameAsFresh(t *testing.T) {
	files := map[string]string{
		"main.toml":     "include = [\"conf.d/*.toml\"]\n[services.m]\ncommand = \"m\"\nenvironment = { A = \"1\" }\n",
		"conf.d/a.toml": "[services.a]\ncommand = \"a\"\nuser = \"app\"\n[services.m]\noverride = \"merge\"\nenvironment = { B = \"2\" }\n",
	}
	dir := writeTree(t, files)
	l := testLoader(t, dir)
	if _, err := l.Load(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "conf.d/b.toml"), []byte("[services.b]\ncommand = \"b\"\n"), 0o644)
	again, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := testLoader(t, dir).Load()
	if err != nil {
		t.Fatal(err)
	}
	for name, svc := range fresh.Services {
		if !svc.Equal(again.Services[name]) {
			t.Errorf("%s: fresh %+v, reused %+v", name, svc, again.Services[name])
		}
	}
}

// A file whose stat is as it was is not read again, once it is older than
// the racy window; any change the kernel sees (a write, even of the same
// size and mtime; a rename over it) makes it read.
func TestLoaderTrustsOnlyOldStats(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"main.toml":     "include = [\"conf.d/*.toml\"]\n",
		"conf.d/a.toml": "[services.a]\ncommand = \"a\"\n",
		"conf.d/b.toml": "[services.b]\ncommand = \"b\"\n",
	})
	l := testLoader(t, dir)
	load := func(what string, reads, decodes int) *Config {
		t.Helper()
		r, d := l.reads, l.decodes
		cfg, err := l.Load()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if l.reads-r != reads || l.decodes-d != decodes {
			t.Errorf("%s: %d files read, %d decoded; want %d and %d", what, l.reads-r, l.decodes-d, reads, decodes)
		}
		return cfg
	}
	load("first", 2, 3)
	// Just written: within the racy window, so read again (not decoded).
	load("fresh files", 2, 0)
	// An hour later, as far as the loader can tell.
	l.now = func() time.Time { return time.Now().Add(time.Hour) }
	load("read once more, now old", 2, 0)
	load("old and unchanged", 0, 0)

	b := filepath.Join(dir, "conf.d/b.toml")
	fi, _ := os.Stat(b)
	os.WriteFile(b, []byte("[services.b]\ncommand = \"c\"\n"), 0o644) // same size
	os.Chtimes(b, fi.ModTime(), fi.ModTime())                         // same mtime; ctime moves
	if cfg := load("rewritten in place", 1, 1); cfg.Services["b"].Command[0] != "c" {
		t.Errorf("b = %v", cfg.Services["b"].Command)
	}
	tmp := filepath.Join(dir, "b.new")
	os.WriteFile(tmp, []byte("[services.b]\ncommand = \"d\"\n"), 0o644)
	os.Rename(tmp, b)
	if cfg := load("replaced by a rename", 1, 1); cfg.Services["b"].Command[0] != "d" {
		t.Errorf("b = %v", cfg.Services["b"].Command)
	}
	load("unchanged again", 0, 0)
}

// The dependency order is worked out again only when a depends_on or the
// set of services changed; else it is the last one.
func TestLoaderOrder(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"main.toml": "include = [\"*.inc\"]\n",
		"a.inc":     "[services.a]\ncommand = \"a\"\n",
		"b.inc":     "[services.b]\ncommand = \"b\"\ndepends_on = [\"a\"]\n",
		"c.inc":     "[services.c]\ncommand = \"c\"\n",
	})
	l := testLoader(t, dir)
	steps := []struct {
		file, body string
		want       []string
		err        string
	}{
		{"", "", []string{"a", "b", "c"}, ""},
		{"a.inc", "[services.a]\ncommand = \"a2\"\n", []string{"a", "b", "c"}, ""},
		{"a.inc", "[services.a]\ncommand = \"a\"\ndepends_on = [\"c\"]\n", []string{"c", "a", "b"}, ""},
		{"c.inc", "[services.c]\ncommand = \"c\"\ndepends_on = [\"b\"]\n", nil, "dependency cycle: a -> c -> b -> a"},
		{"c.inc", "[services.c]\ncommand = \"c\"\n", []string{"c", "a", "b"}, ""},
		{"d.inc", "[services.d]\ncommand = \"d\"\n", []string{"c", "a", "b", "d"}, ""},
	}
	var first []string
	for i, st := range steps {
		if st.file != "" {
			os.WriteFile(filepath.Join(dir, st.file), []byte(st.body), 0o644)
		}
		cfg, err := l.Load()
		if i == 0 {
			first = cfg.Order
		}
		if i == 1 && &cfg.Order[0] != &first[0] {
			t.Errorf("step 1: the order was worked out again, with no depends_on changed")
		}
		switch {
		case st.err != "":
			if err == nil || !strings.Contains(err.Error(), st.err) {
				t.Errorf("step %d: got %v, want %q", i, err, st.err)
			}
		case err != nil:
			t.Errorf("step %d: %v", i, err)
		case !slices.Equal(cfg.Order, st.want):
			t.Errorf("step %d: order %v, want %v", i, cfg.Order, st.want)
		}
	}
}

// TestEnvFilesWithIncludes: a relative env_file is relative to the file
// that names it, included or not; a change of the top-level env_file is a
// change of every service (a reload parses them again); warnings name the
// included file.
func TestEnvFilesWithIncludes(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"main.toml":       "include = [\"conf.d/*.toml\"]\nenv_file = [\"-common.env\"]\n[services.base]\ncommand = \"base\"\n",
		"conf.d/a.toml":   "[services.a]\ncommand = \"a\"\nenv_file = [\"a.env\"]\nautostart = false\n[services.b]\ncommand = \"b\"\ndepends_on = [\"a\"]\n",
		"conf.d/a.env":    "A=1\n",
		"common.env":      "C=1\n",
		"unrelated/x.env": "X=1\n",
	})
	l := testLoader(t, dir)
	cfg, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Services["a"]
	want := []EnvFile{{Path: filepath.Join(dir, "common.env"), Optional: true}, {Path: filepath.Join(dir, "conf.d", "a.env")}}
	if !slices.Equal(a.EnvFiles, want) {
		t.Errorf("a's env files %+v, want %+v", a.EnvFiles, want)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), filepath.Join(dir, "conf.d", "a.toml")+":4: services.a.autostart: warning") {
		t.Errorf("warnings %v: want one, on a.toml's autostart line", cfg.Warnings)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.toml"), []byte("include = [\"conf.d/*.toml\"]\nenv_file = [\"unrelated/x.env\"]\n[services.base]\ncommand = \"base\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg2, err := l.Load()
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg2.Services["a"].EnvFiles[0].Path; got != filepath.Join(dir, "unrelated", "x.env") {
		t.Errorf("after the top-level env_file changed, a reads %s first", got)
	}
}
