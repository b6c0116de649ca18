package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Fuzz targets for config. Seeds are in testdata/fuzz/<Name>/; run one with
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 2m ./config

var fuzzEnv = map[string]string{"PORT": "8080", "EMPTY": "", "BIN": "/opt/bin", "DIR": "${PORT}"}

func fuzzLookup(k string) (string, bool) { v, ok := fuzzEnv[k]; return v, ok }

// fuzzOptions gives Parse a fixed environment and user database.
func fuzzOptions(f *testing.F) []Option {
	dir := f.TempDir()
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	if err := os.WriteFile(passwd, []byte(testPasswd), 0o644); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(group, []byte(testGroup), 0o644); err != nil {
		f.Fatal(err)
	}
	// No include is followed: a fuzzer must not read whatever files its
	// inputs name (TestIncludeMerge and the loader tests cover them).
	noIncludes := func(o *options) { o.noIncludes = true }
	return []Option{WithBaseEnv([]string{"PATH=/bin", "HOME=/root", "USER=root"}), WithUserDB(passwd, group), noIncludes}
}

// FuzzParse: TOML bytes to a validated config.
func FuzzParse(f *testing.F) {
	opts := fuzzOptions(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.toml", data, fuzzLookup, opts...)
		cfg2, err2 := Parse("f.toml", data, fuzzLookup, opts...)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() || err == nil && !reflect.DeepEqual(cfg, cfg2) {
			t.Fatalf("two parses differ:\n%v\n%v", err, err2)
		}
		if err != nil {
			checkFuzzErrors(t, data, err)
		} else {
			checkConfig(t, cfg)
		}

		// ControlSocket reads only the top-level keys, and agrees with a
		// whole load that succeeds.
		sock, _, serr := controlSocket("f.toml", data, fuzzLookup)
		if err == nil && (serr != nil || sock != cfg.ControlSocket) {
			t.Fatalf("ControlSocket = %q, %v; Parse found %q", sock, serr, cfg.ControlSocket)
		}

		_, lerr := checkLimits("f.toml", data, false)
		switch {
		case lerr == nil:
			root, derr := decode(data)
			if derr != nil {
				return
			}
			// The limit scan never counts too little.
			if d := valueDepth(root); d > MaxDepth {
				t.Fatalf("accepted by the limits, but the decoded values nest %d deep", d)
			}
			// keyLines agrees with the decoder's own positions.
			if len(data) <= 4096 {
				want, err := referenceLines(data)
				if err != nil {
					t.Fatalf("decodes once, not twice: %v", err)
				}
				ask := make(map[string]bool, len(want))
				for k := range want {
					ask[k] = true
				}
				if msg := compareLines(keyLines(data, ask), want, lineQuirks(data, root)); msg != "" {
					t.Fatal(msg)
				}
			}
		case len(data) <= 1024 && limitError(t, lerr) != nil && !strings.Contains(lerr.Error(), "the file is"):
			// Refused for nesting: it could not have been valid anyway.
			if _, err := parseUnlimited("f.toml", data, fuzzLookup, opts...); err == nil {
				t.Fatalf("refused by the limits (%v), but valid without them", lerr)
			}
		}
	})
}

// lineQuirks reports whether root (decoded from data) has what makes the
// decoder's positions differ from key lines (see TestKeyLines): multi-line
// strings, empty keys; also arrays of tables, which repeat keys.
func lineQuirks(data []byte, root map[string]any) bool {
	for _, s := range []string{`"""`, "'''", "[["} {
		if bytes.Contains(data, []byte(s)) {
			return true
		}
	}
	var emptyKey func(v any) bool
	emptyKey = func(v any) bool {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "" || emptyKey(e) {
					return true
				}
			}
		case []any:
			return slices.ContainsFunc(x, emptyKey)
		}
		return false
	}
	return emptyKey(root)
}

// valueDepth is how deeply v nests, counted as the limit scan counts: each
// key of a table and each array is a level; an array of tables ([[a]]) adds
// none of its own, as its key path has no index.
func valueDepth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, 1+valueDepth(e))
		}
	case []map[string]any:
		for _, e := range x {
			d = max(d, valueDepth(e))
		}
	case []any:
		for _, e := range x {
			d = max(d, valueDepth(e))
		}
		d++
	}
	return d
}

func checkFuzzErrors(t *testing.T, data []byte, err error) {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) == 0 {
		t.Fatalf("want *Errors, got %T %v", err, err)
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	for _, e := range errs.List {
		if e.File != "f.toml" || e.Line < 0 || e.Line > lines || e.Msg == "" {
			t.Fatalf("bad error %+v (the file has %d lines)", e, lines)
		}
	}
}

// checkConfig checks that every field of a config that loaded is valid.
func checkConfig(t *testing.T, cfg *Config) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf(format, args...)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, cfg.LogLevel) || !slices.Contains([]string{"text", "logfmt", "json"}, cfg.LogFormat) ||
		cfg.LogBuffer < MinLogBuffer || cfg.LogBuffer > MaxLogBuffer || badListen(cfg.MetricsListen) != "" {
		fail("log and metrics settings %q %q %d %q", cfg.LogLevel, cfg.LogFormat, cfg.LogBuffer, cfg.MetricsListen)
	}
	if len(cfg.ControlSocket) >= 108 || cfg.ShutdownTimeout <= 0 || cfg.ReadyTimeout <= 0 || badHostname(cfg.Hostname) != "" {
		fail("globals %+v", cfg)
	}
	if len(cfg.Order) != len(cfg.Services) {
		fail("order %v for %d services", cfg.Order, len(cfg.Services))
	}
	pos := make(map[string]int)
	for i, n := range cfg.Order {
		pos[n] = i
	}
	for name, s := range cfg.Services {
		if s.Name != name || !validServiceName(name) {
			fail("service name %q / %q", name, s.Name)
		}
		if len(s.Command) == 0 || s.Command[0] == "" {
			fail("%s: command %q", name, s.Command)
		}
		if !slices.Contains(policies, string(s.Restart)) || s.Oneshot && s.Restart != PolicyNever && s.Restart != PolicyOnFailure {
			fail("%s: restart %q oneshot %v", name, s.Restart, s.Oneshot)
		}
		if len(s.SuccessExitCodes) == 0 || slices.ContainsFunc(s.SuccessExitCodes, func(c int) bool { return c < 0 || c > 255 }) {
			fail("%s: exit codes %v", name, s.SuccessExitCodes)
		}
		if s.MinUptime < 0 || s.StopTimeout < 0 || s.MaxRestarts < -1 || s.StopSignal < 1 || s.StopSignal > 64 || s.Output == "" {
			fail("%s: %+v", name, s)
		}
		b := s.Backoff
		switch b.Type {
		case "fixed":
			if b.Delay < 0 || b.InitialDelay != 0 || b.MaxDelay != 0 || b.Multiplier != 0 {
				fail("%s: backoff %+v", name, b)
			}
		case "exponential":
			if b.InitialDelay < 0 || b.MaxDelay < b.InitialDelay || !(b.Multiplier >= 1) || b.Multiplier > 1e308 {
				fail("%s: backoff %+v", name, b)
			}
		default:
			fail("%s: backoff %+v", name, b)
		}
		if c := s.CrashLoop; c.MaxRestarts < 1 || c.Window <= 0 || c.Backoff < 0 {
			fail("%s: crash_loop %+v", name, c)
		}
		for _, d := range s.DependsOn {
			if cfg.Services[d] == nil || d == name || pos[d] >= pos[name] {
				fail("%s: depends on %q, order %v", name, d, cfg.Order)
			}
		}
		for _, c := range []*Check{s.Ready, s.Health} {
			if c == nil {
				continue
			}
			if c.Interval <= 0 || c.Timeout <= 0 || c.Kind == "" || c.Threshold < 1 || c.Period < 0 ||
				(c == s.Health) != (c.OnFailure != "") || c == s.Health && c.Period != 0 ||
				c.Kind == CheckExec && (len(c.Exec) == 0 || c.Exec[0] == "") || c == s.Health && c.Kind == CheckNotify {
				fail("%s: check %+v", name, c)
			}
		}
		if s.Ready != nil && s.Oneshot {
			fail("%s: a oneshot with a ready check", name)
		}
		// Nothing that reaches exec or a system call holds a NUL.
		strs := slices.Concat(s.Command, s.Env, []string{s.WorkingDir, s.User, s.Group, s.Output, cfg.ControlSocket})
		for _, c := range []*Check{s.Ready, s.Health} {
			if c != nil {
				strs = append(slices.Concat(strs, c.Exec), c.Target)
			}
		}
		if i := slices.IndexFunc(strs, func(x string) bool { return strings.IndexByte(x, 0) >= 0 }); i >= 0 {
			fail("%s: a NUL in %q", name, strs[i])
		}
		if (s.User != "" || s.Group != "") != (s.Credential != nil) {
			fail("%s: user %q group %q credential %+v", name, s.User, s.Group, s.Credential)
		}
		for i := 1; i < len(s.Env); i++ {
			if envName(s.Env[i-1]) >= envName(s.Env[i]) {
				fail("%s: env not sorted by name, or a name twice: %q", name, s.Env)
			}
		}
		for k, v := range s.Environment {
			if !slices.Contains(s.Env, k+"="+v) {
				fail("%s: environment %s=%s not in %q", name, k, v, s.Env)
			}
		}
	}
}

// FuzzSplitWords: the command-string splitter.
func FuzzSplitWords(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			if words != nil {
				t.Fatalf("words %q with error %v", words, err)
			}
			return
		}
		// Stable: the words, quoted, split back into themselves.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		if again, err := splitWords(strings.Join(quoted, " \t")); err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q split into %q; quoted again, into %q, %v", s, words, again, err)
		}
		// Blanks around do not matter.
		if again, err := splitWords(" \t" + s + "\n "); err != nil || !slices.Equal(again, words) {
			t.Fatalf("%q split into %q; with blanks around, into %q, %v", s, words, again, err)
		}
		// Without quotes or backslashes, it is a split on blanks.
		if !strings.ContainsAny(s, `'"\`) {
			fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' })
			if len(fields) != len(words) || len(fields) > 0 && !slices.Equal(fields, words) {
				t.Fatalf("%q split into %q, want %q", s, words, fields)
			}
		}
	})
}

// FuzzExpand: ${VAR} and ${VAR:-default}.
func FuzzExpand(f *testing.F) {
	f.Fuzz(func(t *testing.T, s, v string) {
		env := func(k string) (string, bool) {
			switch k {
			case "V":
				return v, true
			case "EMPTY":
				return "", true
			}
			return "", false
		}
		out, err := expand(s, env)
		if out2, err2 := expand(s, env); out2 != out || (err == nil) != (err2 == nil) {
			t.Fatalf("two expansions of %q differ", s)
		}
		if !strings.Contains(s, "${") && (err != nil || out != s) {
			t.Fatalf("%q has nothing to expand, got %q, %v", s, out, err)
		}
		if err != nil && out != "" {
			t.Fatalf("%q: %q with error %v", s, out, err)
		}
		// "$${" writes "${": escaping every "${" gives back the string.
		if back, err := expand(strings.ReplaceAll(s, "${", "$${"), env); err != nil || back != s {
			t.Fatalf("%q escaped expands to %q, %v", s, back, err)
		}
		// A value goes in as it is, never expanded again.
		if got, err := expand("<${V}>", env); err != nil || got != "<"+v+">" {
			t.Fatalf("${V} with V=%q gives %q, %v", v, got, err)
		}
		// A default without braces or "$" is used for unset and empty variables.
		if !strings.ContainsAny(v, "${}") {
			for _, name := range []string{"UNSET", "EMPTY"} {
				if got, err := expand("${"+name+":-"+v+"}", env); err != nil || got != v {
					t.Fatalf("${%s:-%s} gives %q, %v", name, v, got, err)
				}
			}
		}
	})
}

// FuzzDuration: durations in the config, through TOML and ${VAR}.
func FuzzDuration(f *testing.F) {
	opts := fuzzOptions(f)
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		if !utf8.ValidString(s) || toml.NewEncoder(&b).Encode(map[string]string{"stop_timeout": s, "min_uptime": s}) != nil {
			return // not a string TOML can hold
		}
		src := "shutdown_timeout = " + strings.TrimPrefix(strings.SplitN(b.String(), "\n", 2)[0], "min_uptime = ") + "\n" +
			"[services.s]\ncommand = \"x\"\n" + b.String()
		cfg, err := Parse("f.toml", []byte(src), fuzzLookup, opts...)

		// What the three keys should be.
		want, werr := expand(s, fuzzLookup)
		var d time.Duration
		if werr == nil {
			d, werr = time.ParseDuration(want)
		}
		switch {
		case werr != nil || d < 0:
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) != 3 {
				t.Fatalf("%q: want 3 errors, got %v", s, err)
			}
		case d == 0:
			// Allowed in a service, not as shutdown_timeout.
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) != 1 || errs.List[0].Key != "shutdown_timeout" || errs.List[0].Line != 1 {
				t.Fatalf("%q: want the shutdown_timeout error, got %v", s, err)
			}
		default:
			if err != nil {
				t.Fatalf("%q: %v", s, err)
			}
			if svc := cfg.Services["s"]; svc.StopTimeout != d || svc.MinUptime != d || cfg.ShutdownTimeout != d {
				t.Fatalf("%q: got %v %v %v, want %v", s, svc.StopTimeout, svc.MinUptime, cfg.ShutdownTimeout, d)
			}
		}
	})
}

// FuzzInclude: a main file and the one file it includes, both made by the
// fuzzer, merged (override and all). Every error names one of the two
// files and a line in it; a config that loads is valid; and a second load
// by the same Loader, nothing changed, decodes nothing and gives the same
// config.
//
//	go test -run '^$' -fuzz '^FuzzInclude$' -fuzztime 2m ./config
func FuzzInclude(f *testing.F) {
	f.Add([]byte("[services.a]\ncommand = \"a\"\nenvironment = { X = \"1\" }\n"), []byte("[services.a]\noverride = \"merge\"\nenvironment = { Y = \"2\" }\n"))
	f.Add([]byte("[services.a]\ncommand = \"a\"\n[services.a.ready]\ntcp = \"h:1\"\n"), []byte("[services.a]\noverride = \"merge\"\nready = { http = \"http://h/\" }\nbackoff = { type = \"exponential\" }\n"))
	f.Add([]byte("[services.a]\ncommand = \"a\"\n"), []byte("[services.a]\ncommand = \"b\"\n"))
	f.Add([]byte("[services.a]\ncommand = \"a\"\ndepends_on = [\"b\"]\n"), []byte("[services.b]\noverride = \"replace\"\nuser = 5\n"))
	opts := fuzzOptions(f)[:2] // this one follows its include
	dir := f.TempDir()
	main, inc := filepath.Join(dir, "main.toml"), filepath.Join(dir, "b.toml")
	f.Fuzz(func(t *testing.T, a, b []byte) {
		head := "include = [\"b.toml\"]\n"
		if err := os.WriteFile(main, append([]byte(head), a...), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(inc, b, 0o644); err != nil {
			t.Fatal(err)
		}
		l := NewLoader(main, fuzzLookup, opts...)
		cfg, err := l.Load()
		if err != nil {
			var errs *Errors
			if !errors.As(err, &errs) || len(errs.List) == 0 {
				t.Fatalf("want *Errors, got %T %v", err, err)
			}
			lines := map[string]int{main: bytes.Count(a, []byte("\n")) + 2, inc: bytes.Count(b, []byte("\n")) + 1}
			for _, e := range errs.List {
				if n, ok := lines[e.File]; !ok || e.Line < 0 || e.Line > n || e.Msg == "" {
					t.Fatalf("bad error %+v", e)
				}
			}
			return
		}
		checkConfig(t, cfg)
		decodes := l.decodes
		again, err := l.Load()
		if err != nil || l.decodes != decodes || !reflect.DeepEqual(cfg, again) {
			t.Fatalf("a second load differs: %v, %d files decoded", err, l.decodes-decodes)
		}
	})
}
