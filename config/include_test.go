package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// writeTree writes files (path relative to dir: content) under a new
// directory and returns it.
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// testLoader is a Loader of dir/main.toml with a fixed environment and
// the test user database.
func testLoader(t testing.TB, dir string) *Loader {
	t.Helper()
	udb := t.TempDir()
	passwd, group := filepath.Join(udb, "passwd"), filepath.Join(udb, "group")
	if err := os.WriteFile(passwd, []byte(testPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(group, []byte(testGroup), 0o644); err != nil {
		t.Fatal(err)
	}
	return NewLoader(filepath.Join(dir, "main.toml"), func(k string) (string, bool) {
		if k == "CONF" {
			return "conf.d", true
		}
		return "", false
	}, WithBaseEnv([]string{"PATH=/usr/bin:/bin", "HOME=/root"}), WithUserDB(passwd, group))
}

// fileWant is an expected problem in a tree: file (relative), line, key
// and parts of the message.
type fileWant struct {
	file string
	line int
	key  string
	msg  []string
}

func checkTreeErrors(t *testing.T, dir string, err error, wants []fileWant) {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want *Errors, got %T: %v", err, err)
	}
	got := errs.List
	if len(got) != len(wants) {
		t.Errorf("got %d errors, want %d:\n%v", len(got), len(wants), err)
	}
	for i := range min(len(got), len(wants)) {
		g, w := got[i], wants[i]
		ok := g.File == filepath.Join(dir, w.file) && g.Line == w.line && g.Key == w.key
		for _, m := range w.msg {
			ok = ok && strings.Contains(g.Msg, strings.ReplaceAll(m, "DIR/", dir+"/"))
		}
		if !ok {
			t.Errorf("error %d = %q\n          want %s:%d: %s: containing %q", i, g.Error(), w.file, w.line, w.key, w.msg)
		}
	}
}

const baseWeb = `include = ["conf.d/*.toml"]

[services.web]
command = ["web", "--port", "80"]
environment = { A = "1", B = "2" }
depends_on = ["db"]
stop_timeout = "7s"
backoff = { type = "exponential", initial_delay = "2s", multiplier = 3.0 }
crash_loop = { max_restarts = 9, window = "2m" }
[services.web.ready]
tcp = "127.0.0.1:80"
interval = "250ms"

[services.db]
command = "db"
`

// The merge rules, one case each: what a tree gives, or the errors it has.
func TestIncludeMerge(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		check func(t *testing.T, cfg *Config)
		errs  []fileWant
	}{{
		name:  "base alone",
		files: map[string]string{"main.toml": baseWeb},
		check: func(t *testing.T, cfg *Config) {
			web := cfg.Services["web"]
			if !slices.Equal(web.Command, []string{"web", "--port", "80"}) || web.Ready.Kind != CheckTCP || !slices.Equal(cfg.Order, []string{"db", "web"}) {
				t.Errorf("web = %+v, order %v", web, cfg.Order)
			}
		},
	}, {
		name: "a new service in an included file",
		files: map[string]string{"main.toml": baseWeb, "conf.d/worker.toml": `[services.worker]
command = "work"
depends_on = ["db"]
`},
		check: func(t *testing.T, cfg *Config) {
			if cfg.Services["worker"] == nil || !slices.Equal(cfg.Order, []string{"db", "web", "worker"}) {
				t.Errorf("services %v, order %v", cfg.Services, cfg.Order)
			}
		},
	}, {
		name: "override merge: keys replace keys, tables merge, arrays replace",
		files: map[string]string{"main.toml": baseWeb, "conf.d/web.toml": `[services.web]
override = "merge"
command = "web --port 8080"
environment = { B = "3", C = "4" }
depends_on = []
backoff = { max_delay = "1m" }
crash_loop = { backoff = "5s" }
ready = { interval = "1s" }
`},
		check: func(t *testing.T, cfg *Config) {
			web := cfg.Services["web"]
			if !slices.Equal(web.Command, []string{"web", "--port", "8080"}) {
				t.Errorf("command %v", web.Command)
			}
			if fmt.Sprint(web.Environment) != "map[A:1 B:3 C:4]" {
				t.Errorf("environment %v", web.Environment)
			}
			if web.DependsOn != nil {
				t.Errorf("depends_on %v, want none (an array is replaced)", web.DependsOn)
			}
			if b := web.Backoff; b.Type != "exponential" || b.InitialDelay != 2*time.Second || b.Multiplier != 3 || b.MaxDelay != time.Minute {
				t.Errorf("backoff %+v", b)
			}
			if c := web.CrashLoop; c.MaxRestarts != 9 || c.Window != 2*time.Minute || c.Backoff != 5*time.Second {
				t.Errorf("crash_loop %+v", c)
			}
			if r := web.Ready; r.Kind != CheckTCP || r.Target != "127.0.0.1:80" || r.Interval != time.Second {
				t.Errorf("ready %+v", r)
			}
			if web.StopTimeout != 7*time.Second {
				t.Errorf("stop_timeout %v: a key not given is kept", web.StopTimeout)
			}
		},
	}, {
		name: "override merge: another check kind or backoff type replaces the old one",
		files: map[string]string{"main.toml": baseWeb, "conf.d/web.toml": `[services.web]
override = "merge"
backoff = { type = "fixed", delay = "3s" }
ready = { http = "http://127.0.0.1:80/ready" }
`},
		check: func(t *testing.T, cfg *Config) {
			web := cfg.Services["web"]
			if b := web.Backoff; b != (Backoff{Type: "fixed", Delay: 3 * time.Second}) {
				t.Errorf("backoff %+v", b)
			}
			if r := web.Ready; r.Kind != CheckHTTP || r.Interval != 250*time.Millisecond {
				t.Errorf("ready %+v: the http check with the old interval", r)
			}
		},
	}, {
		name: "override replace: the whole service",
		files: map[string]string{"main.toml": baseWeb, "conf.d/web.toml": `[services.web]
override = "replace"
command = "other"
`},
		check: func(t *testing.T, cfg *Config) {
			web := cfg.Services["web"]
			if !slices.Equal(web.Command, []string{"other"}) || web.Environment != nil || web.DependsOn != nil || web.Ready != nil ||
				web.StopTimeout != 5*time.Second || web.Backoff.Type != "fixed" {
				t.Errorf("web = %+v: nothing of the old definition may be left", web)
			}
		},
	}, {
		name: "lexical order: the later file merges last",
		files: map[string]string{"main.toml": baseWeb,
			"conf.d/20-b.toml": "[services.web]\noverride = \"merge\"\ncommand = \"b\"\n",
			"conf.d/10-a.toml": "[services.web]\noverride = \"merge\"\ncommand = \"a\"\nenvironment = { A = \"a\" }\n",
			"conf.d/3-c.toml":  "[services.web]\noverride = \"merge\"\ncommand = \"c\"\nenvironment = { A = \"c\" }\n"},
		check: func(t *testing.T, cfg *Config) {
			// "10-a" < "20-b" < "3-c": by bytes, not by number.
			if web := cfg.Services["web"]; web.Command[0] != "c" || web.Environment["A"] != "c" {
				t.Errorf("web = %v %v, want c's", web.Command, web.Environment)
			}
			if want := []string{"main.toml", "conf.d/10-a.toml", "conf.d/20-b.toml", "conf.d/3-c.toml"}; !slices.Equal(rel(cfg), want) {
				t.Errorf("files %v, want %v", rel(cfg), want)
			}
		},
	}, {
		name: "order: the main file, then each entry as listed, each file followed by what it includes",
		files: map[string]string{
			"main.toml":       "include = [\"z.toml\", \"a/*.toml\"]\n[services.s]\ncommand = \"main\"\n",
			"z.toml":          "include = [\"zz.toml\"]\n[services.s]\noverride = \"merge\"\ncommand = \"z\"\n",
			"zz.toml":         "[services.s]\noverride = \"merge\"\ncommand = \"zz\"\n",
			"a/1.toml":        "[services.s]\noverride = \"merge\"\ncommand = \"a1\"\n",
			"a/not-toml.conf": "this is not read",
		},
		check: func(t *testing.T, cfg *Config) {
			if want := []string{"main.toml", "z.toml", "zz.toml", "a/1.toml"}; !slices.Equal(rel(cfg), want) {
				t.Errorf("files %v, want %v", rel(cfg), want)
			}
			if c := cfg.Services["s"].Command[0]; c != "a1" {
				t.Errorf("command %s, want a1's", c)
			}
		},
	}, {
		name: "relative paths are from the including file's directory",
		files: map[string]string{
			"main.toml":         "include = [\"sub/a.toml\"]\n",
			"sub/a.toml":        "include = [\"b.toml\", \"${CONF}/*.toml\"]\n",
			"sub/b.toml":        "[services.right]\ncommand = \"r\"\n",
			"sub/conf.d/c":      "not matched",
			"sub/conf.d/c.toml": "[services.expanded]\ncommand = \"e\"\n",
			"b.toml":            "[services.wrong]\ncommand = \"w\"\n",
		},
		check: func(t *testing.T, cfg *Config) {
			if cfg.Services["right"] == nil || cfg.Services["expanded"] == nil || cfg.Services["wrong"] != nil {
				t.Errorf("services %v", cfg.Services)
			}
		},
	}, {
		name:  "a glob matching nothing is fine, a directory it matches is passed over",
		files: map[string]string{"main.toml": "include = [\"none/*.toml\", \"d*\"]\n[services.a]\ncommand = \"a\"\n", "dir/x.toml": "x = 1"},
		check: func(t *testing.T, cfg *Config) {
			if len(cfg.Services) != 1 || len(cfg.Files) != 1 {
				t.Errorf("services %v files %v", cfg.Services, cfg.Files)
			}
		},
	}, {
		name:  "defined twice without a marker: both places",
		files: map[string]string{"main.toml": baseWeb, "conf.d/web.toml": "# the app's web\n\n[services.web]\ncommand = \"x\"\n"},
		errs:  []fileWant{{"conf.d/web.toml", 3, "services.web", []string{"is defined already, at DIR/main.toml:3;", `override = "merge"`}}},
	}, {
		name:  "override with nothing to override",
		files: map[string]string{"main.toml": baseWeb, "conf.d/new.toml": "[services.new]\ncommand = \"x\"\noverride = \"merge\"\n"},
		errs:  []fileWant{{"conf.d/new.toml", 3, "services.new.override", []string{"nothing to override", "remove override"}}},
	}, {
		name:  "a bad override value",
		files: map[string]string{"main.toml": baseWeb, "conf.d/web.toml": "[services.web]\noverride = \"append\"\n"},
		errs:  []fileWant{{"conf.d/web.toml", 2, "services.web.override", []string{`not "append"`}}},
	}, {
		name:  "tend's settings only in the main file",
		files: map[string]string{"main.toml": "include = [\"x.toml\"]\n", "x.toml": "log_level = \"debug\"\nservics = 1\n[services.a]\ncommand = \"a\"\n"},
		errs: []fileWant{
			{"x.toml", 1, "log_level", []string{"only the main file (DIR/main.toml) sets"}},
			{"x.toml", 2, "servics", []string{`did you mean "services"?`}},
		},
	}, {
		name: "errors name the file each key came from",
		files: map[string]string{"main.toml": baseWeb + "restart = \"sometimes\"\n", "conf.d/web.toml": `[services.web]
override = "merge"
environment = { "B=" = "x" }
ready = { interval = "-1s" }
depends_on = ["nope"]
`},
		errs: []fileWant{
			{"main.toml", 16, "services.db.restart", []string{`unknown restart policy "sometimes"`}},
			{"conf.d/web.toml", 3, `services.web.environment."B="`, []string{`has a "="`}},
			{"conf.d/web.toml", 4, "services.web.ready.interval", []string{"must not be negative"}},
			{"conf.d/web.toml", 5, "services.web.depends_on", []string{`unknown service "nope"`}},
		},
	}, {
		name: "an error in a key the base gave, after a merge, is the base's",
		files: map[string]string{"main.toml": "include = [\"o.toml\"]\n[services.a]\ncommand = \"a\"\nuser = \"nosuch\"\n",
			"o.toml": "[services.a]\noverride = \"merge\"\ncommand = \"b\"\n"},
		errs: []fileWant{{"main.toml", 4, "services.a.user", []string{`unknown user "nosuch"`}}},
	}, {
		name: "a missing required key of a replaced service is the replacing file's",
		files: map[string]string{"main.toml": "include = [\"o.toml\"]\n[services.a]\ncommand = \"a\"\n",
			"o.toml": "\n[services.a]\noverride = \"replace\"\nuser = \"app\"\n"},
		errs: []fileWant{{"o.toml", 2, "services.a.command", []string{"is required"}}},
	}, {
		name:  "a missing literal path",
		files: map[string]string{"main.toml": "\ninclude = [\"conf.d/*.toml\", \"local.toml\"]\n"},
		errs:  []fileWant{{"main.toml", 2, "include", []string{`"local.toml" (DIR/local.toml) does not exist`}}},
	}, {
		name: "include cycle",
		files: map[string]string{"main.toml": "include = [\"a.toml\"]\n", "a.toml": "include = [\"b.toml\"]\n",
			"b.toml": "# b\n\n\ninclude = [\"a.toml\", \"main.toml\"]\n[services.b]\ncommand = \"b\"\n"},
		errs: []fileWant{
			{"b.toml", 4, "include", []string{"include cycle: DIR/main.toml → DIR/a.toml → DIR/b.toml → DIR/a.toml"}},
			{"b.toml", 4, "include", []string{"include cycle: DIR/main.toml → DIR/a.toml → DIR/b.toml → DIR/main.toml"}},
		},
	}, {
		name:  "a file included twice",
		files: map[string]string{"main.toml": "include = [\"a.toml\", \"b.toml\"]\n", "a.toml": "", "b.toml": "include = [\"a.toml\"]\n"},
		errs:  []fileWant{{"b.toml", 1, "include", []string{"DIR/a.toml is read already (as DIR/a.toml, included from DIR/main.toml)"}}},
	}, {
		name:  "depth 8 is fine",
		files: chain(8),
		check: func(t *testing.T, cfg *Config) {
			if len(cfg.Files) != 9 || cfg.Services["s8"] == nil {
				t.Errorf("files %v", cfg.Files)
			}
		},
	}, {
		name:  "depth 9 is not",
		files: chain(9),
		errs:  []fileWant{{"f8.toml", 1, "include", []string{"includes nest more than 8 deep (DIR/main.toml → DIR/f1.toml →", "DIR/f8.toml → DIR/f9.toml)"}}},
	}, {
		name: "a syntax error in one file, a bad value in another: both told; no guesses about what the broken file had",
		files: map[string]string{"main.toml": "include = [\"a.toml\", \"b.toml\"]\n[services.m]\ncommand = \"m\"\ndepends_on = [\"a\"]\n",
			"a.toml": "[services.a]\ncommand = [\"a\"\n",
			"b.toml": "[services.a]\noverride = \"merge\"\n[services.b]\ncommand = \"b\"\nrestart = \"no\"\n"},
		errs: []fileWant{
			{"a.toml", 2, "services.a.command", []string{"TOML syntax"}},
			{"b.toml", 5, "services.b.restart", []string{"unknown restart policy"}},
		},
	}, {
		name:  "include must be an array of strings",
		files: map[string]string{"main.toml": "include = \"conf.d\"\n"},
		errs:  []fileWant{{"main.toml", 1, "include", []string{"must be an array of paths or globs"}}},
	}, {
		name:  "a bad glob",
		files: map[string]string{"main.toml": "include = [\"[a-\"]\n"},
		errs:  []fileWant{{"main.toml", 1, "include", []string{`"[a-" is not a valid glob`}}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			cfg, err := testLoader(t, dir).Load()
			switch {
			case tt.errs != nil:
				checkTreeErrors(t, dir, err, tt.errs)
			case err != nil:
				t.Fatalf("unexpected error:\n%v", err)
			default:
				tt.check(t, cfg)
			}
		})
	}
}

// chain is main.toml including f1.toml including ... fN.toml.
func chain(n int) map[string]string {
	files := map[string]string{"main.toml": "include = [\"f1.toml\"]\n"}
	for i := 1; i <= n; i++ {
		body := fmt.Sprintf("[services.s%d]\ncommand = \"x\"\n", i)
		if i < n {
			body = fmt.Sprintf("include = [\"f%d.toml\"]\n", i+1) + body
		}
		files[fmt.Sprintf("f%d.toml", i)] = body
	}
	return files
}

// rel is cfg.Files relative to the main file's directory.
func rel(cfg *Config) []string {
	out := make([]string, len(cfg.Files))
	for i, f := range cfg.Files {
		out[i], _ = filepath.Rel(filepath.Dir(cfg.Path), f)
	}
	return out
}

// Included files are regular files, read without blocking: a FIFO (which
// would block an open for reading until a writer comes) and a directory
// named as such are errors, at once.
func TestIncludeOnlyRegularFiles(t *testing.T) {
	dir := writeTree(t, map[string]string{"main.toml": "include = [\"fifo.toml\", \"dir.toml\", \"glob/*\"]\n"})
	for _, p := range []string{"fifo.toml", "glob/fifo"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := unix.Mkfifo(filepath.Join(dir, p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "dir.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := testLoader(t, dir).Load(); done <- err }()
	select {
	case err := <-done:
		checkTreeErrors(t, dir, err, []fileWant{
			{"main.toml", 1, "include", []string{"DIR/fifo.toml is a FIFO, not a regular file"}},
			{"main.toml", 1, "include", []string{"DIR/dir.toml is a directory"}},
			{"main.toml", 1, "include", []string{"DIR/glob/fifo is a FIFO"}},
		})
	case <-time.After(10 * time.Second):
		t.Fatal("the load is stuck on a FIFO")
	}
}

// The tree's bounds: files and bytes.
func TestIncludeLimits(t *testing.T) {
	t.Run("files", func(t *testing.T) {
		dir := writeTree(t, map[string]string{"main.toml": "include = [\"d/*.toml\"]\n"})
		os.Mkdir(filepath.Join(dir, "d"), 0o755)
		for i := range MaxFiles {
			if err := os.WriteFile(filepath.Join(dir, "d", fmt.Sprintf("%05d.toml", i)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		_, err := testLoader(t, dir).Load()
		checkTreeErrors(t, dir, err, []fileWant{{"main.toml", 1, "include", []string{"more than 10000 files"}}})
		os.Remove(filepath.Join(dir, "d", "00000.toml"))
		if cfg, err := testLoader(t, dir).Load(); err != nil || len(cfg.Files) != MaxFiles {
			t.Fatalf("%d files: %v", MaxFiles, err)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		fill := "#" + strings.Repeat("x", 1<<20) + "\n"
		dir := writeTree(t, map[string]string{"main.toml": "include = [\"*.inc\"]\n",
			"1.inc": fill, "2.inc": fill, "3.inc": fill, "4.inc": fill})
		_, err := testLoader(t, dir).Load()
		checkTreeErrors(t, dir, err, []fileWant{{"main.toml", 1, "include", []string{"DIR/4.inc: the include tree has more than 4194304 bytes in all"}}})
	})
}
