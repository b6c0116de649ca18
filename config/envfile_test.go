package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// kv writes the variables of a parse as "NAME=value@line", for comparison.
func kv(vars []EnvVar) []string {
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = v.Name + "=" + v.Value + "@" + strconv.Itoa(v.Line)
	}
	return out
}

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // NAME=value@line
		line int      // of the error, when want is nil
		err  string   // part of the error
	}{
		{"plain", "A=1\nB=two\n", []string{"A=1@1", "B=two@2"}, 0, ""},
		{"no newline at the end", "A=1", []string{"A=1@1"}, 0, ""},
		{"empty file", "", []string{}, 0, ""},
		{"blank lines and comments", "\n# a comment\n  ; another\n\t\nA=1\n#B=2\n", []string{"A=1@5"}, 0, ""},
		{"a comment does not continue", "# ends with \\\nA=1\n", []string{"A=1@2"}, 0, ""},
		{"empty value", "A=\nB=   \nC=''\nD=\"\"\n", []string{"A=@1", "B=@2", "C=@3", "D=@4"}, 0, ""},
		{"= in the value", "URL=postgres://u:p@h/db?a=b&c=d\n", []string{"URL=postgres://u:p@h/db?a=b&c=d@1"}, 0, ""},
		{"blanks around the name, the = and the value", "  A  =  x y  \t\n", []string{"A=x y@1"}, 0, ""},
		{"later wins, both listed", "A=1\nA=2\n", []string{"A=1@1", "A=2@2"}, 0, ""},
		{"export prefix", "export A=1\nexport\tB=2\nexportC=3\n", []string{"A=1@1", "B=2@2", "exportC=3@3"}, 0, ""},
		{"a variable named export", "export=1\n", []string{"export=1@1"}, 0, ""},
		{"unquoted: no comment after a value", "A=x # y\n", []string{"A=x # y@1"}, 0, ""},
		{"unquoted: quotes inside are kept", "A=it's \"so\"\n", []string{"A=it's \"so\"@1"}, 0, ""},
		{"unquoted: backslash keeps the next byte", `A=a\\b\"c\$d\ `, []string{`A=a\b"c$d @1`}, 0, ""},
		{"unquoted: continuation", "A=one\\\ntwo\\\n  three\nB=4\n", []string{"A=onetwo  three@1", "B=4@4"}, 0, ""},
		{"unquoted: continuation at the end of the file", "A=x\\", []string{"A=x@1"}, 0, ""},
		{"single quotes are literal", `A='a\nb\\c $HOME "q"'`, []string{`A=a\nb\\c $HOME "q"@1`}, 0, ""},
		{"single quotes span lines", "A='one\ntwo'\nB=3\n", []string{"A=one\ntwo@1", "B=3@3"}, 0, ""},
		{"single quotes keep blanks", "A='  x  '  \n", []string{"A=  x  @1"}, 0, ""},
		{"double quotes: the four escapes", `A="a\"b\\c\` + "`" + `d\$e"`, []string{"A=a\"b\\c`d$e@1"}, 0, ""},
		{"double quotes: other escapes are kept as written", `A="x\ny\tz\q"`, []string{`A=x\ny\tz\q@1`}, 0, ""},
		{"double quotes: continuation", "A=\"one \\\ntwo\"\n", []string{"A=one two@1"}, 0, ""},
		{"double quotes span lines", "A=\"one\ntwo\"\nB=3\n", []string{"A=one\ntwo@1", "B=3@3"}, 0, ""},
		{"double quotes keep blanks and #", "A=\" x # y \"\n", []string{"A= x # y @1"}, 0, ""},
		{"CRLF line endings", "A=1\r\nB=\"2\"\r\n# c\r\nC='x\r\ny'\r\nD=a\\\r\nb\r\n", []string{"A=1@1", "B=2@2", "C=x\ny@4", "D=ab@6"}, 0, ""},
		{"a byte order mark at the start", "\ufeffA=1\n", []string{"A=1@1"}, 0, ""},
		{"UTF-8 values", "GREETING=grüß dich ✓\n", []string{"GREETING=grüß dich ✓@1"}, 0, ""},
		{"control bytes other than NUL", "A=\x1b[1m\n", []string{"A=\x1b[1m@1"}, 0, ""},

		{"bad key: digit first", "A=1\n1A=2\n", nil, 2, `"1A" is not a valid variable name`},
		{"bad key: dash", "MY-VAR=1\n", nil, 1, `"MY-VAR" is not a valid variable name`},
		{"bad key: blank inside", "MY VAR=1\n", nil, 1, `"MY VAR" is not a valid variable name`},
		{"bad key: quoted", "\"A\"=1\n", nil, 1, `"\"A\"" is not a valid variable name`},
		{"bad key: empty", "=1\n", nil, 1, `begins with "="`},
		{"no =", "A=1\n\nJUSTANAME\n", nil, 3, `"JUSTANAME" has no "="`},
		{"no = at the end of the file", "A=1\nB", nil, 2, `"B" has no "="`},
		{"unterminated double quote", "A=1\nB=\"open\nC=3\n", nil, 2, "the double quote opened here is never closed"},
		{"unterminated single quote", "A='open\n", nil, 1, "the single quote opened here is never closed"},
		{"unterminated after an escape", `A="x\`, nil, 1, "double quote opened here is never closed"},
		{"text after the closing quote", "A=\"x\" # comment\n", nil, 1, `"# comment" after the closing quote`},
		{"text after a closing quote on a later line", "A='x\ny'z\n", nil, 2, `"z" after the closing quote`},
		{"NUL in a value", "A=1\nB=x\x00y\n", nil, 2, "NUL byte (\\u0000) at column 4"},
		{"NUL in a comment", "# \x00\n", nil, 1, "NUL byte"},
		{"not UTF-8", "A=1\nB=caf\xe9\n", nil, 2, "is not UTF-8 (byte 0xe9 at column 6)"},
		{"not UTF-8 in a key", "\xff=1\n", nil, 1, "is not UTF-8"},
		{"too long for the kernel", "A=" + strings.Repeat("x", maxEnvString-1) + "\n", nil, 1, `"A" is 131072 bytes long`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars, err := ParseEnvFile("/etc/app.env", []byte(tt.in))
			if tt.want != nil {
				if err != nil {
					t.Fatalf("error: %v", err)
				}
				if got := kv(vars); !slices.Equal(got, tt.want) {
					t.Fatalf("got  %q\nwant %q", got, tt.want)
				}
				return
			}
			var fe *EnvFileError
			if !errors.As(err, &fe) {
				t.Fatalf("want *EnvFileError, got %T %v (vars %q)", err, err, kv(vars))
			}
			if fe.File != "/etc/app.env" || fe.Line != tt.line || !strings.Contains(fe.Msg, tt.err) {
				t.Fatalf("got %v\nwant /etc/app.env:%d: ...%s...", err, tt.line, tt.err)
			}
			if want := "/etc/app.env:" + strconv.Itoa(tt.line) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("%q does not begin with %q", err, want)
			}
		})
	}
}

func TestParseEnvFileLongestValue(t *testing.T) {
	in := "A=" + strings.Repeat("x", maxEnvString-2)
	vars, err := ParseEnvFile("f", []byte(in))
	if err != nil || len(vars) != 1 {
		t.Fatalf("the longest value the kernel takes was refused: %v", err)
	}
}

func TestParseEnvFileTooManyVars(t *testing.T) {
	var b strings.Builder
	for range MaxEnvFileVars {
		b.WriteString("A=1\n")
	}
	if _, err := ParseEnvFile("f", []byte(b.String())); err != nil {
		t.Fatalf("%d assignments refused: %v", MaxEnvFileVars, err)
	}
	b.WriteString("B=2\n")
	_, err := ParseEnvFile("f", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "f:4097: one assignment too many") {
		t.Fatalf("got %v", err)
	}
}

func TestReadEnvFileRefuses(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, []byte("A="+strings.Repeat("x", MaxEnvFileSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	atLimit := filepath.Join(dir, "at-limit")
	if err := os.WriteFile(atLimit, []byte("A="+strings.Repeat("x", 100_000)+"\n"+strings.Repeat("#", MaxEnvFileSize-100_003)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEnvFile(atLimit); err != nil {
		t.Errorf("a file of exactly %d bytes: %v", MaxEnvFileSize, err)
	}
	tests := []struct {
		path, want string
	}{
		{fifo, fifo + ": is a FIFO, not a regular file"},
		{dir, dir + ": is a directory, not a regular file"},
		{"/dev/null", "/dev/null: is a character device, not a regular file"},
		{big, big + ": the file is 1048578 bytes; tend reads env files of at most 1048576 bytes (1 MiB)"},
		{filepath.Join(dir, "missing"), "open " + filepath.Join(dir, "missing") + ": no such file or directory"},
	}
	for _, tt := range tests {
		done := make(chan error, 1)
		go func() { _, err := ReadEnvFile(tt.path); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("%s:\n got  %v\n want %s", tt.path, err, tt.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("reading %s did not return: it must never wait", tt.path)
		}
	}
	if _, err := ReadEnvFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file is not fs.ErrNotExist: %v", err)
	}
}

// writeEnvFiles writes files (name → contents) into a new directory and
// returns it.
func writeEnvFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestEnvFileErrorsAtLoad(t *testing.T) {
	dir := writeEnvFiles(t, map[string]string{
		"ok.env":  "A=1\n",
		"bad.env": "A=1\n1B=2\n",
	})
	src := strings.ReplaceAll(`env_file = ["DIR/missing-global.env"]
[services.app]
command = "true"
env_file = ["DIR/ok.env", "DIR/missing.env", "-DIR/missing-optional.env", "DIR/bad.env"]
[services.typed]
command = "true"
env_file = 3
[services.empty]
command = "true"
env_file = ["-", ""]
[services.typo]
command = "true"
env_files = ["DIR/ok.env"]
[services.other]
command = "true"
env_file = "DIR/bad.env"
`, "DIR", dir)
	_, err := parse(t, src, nil)
	checkErrors(t, err, []want{
		{1, "env_file", "open " + dir + "/missing-global.env: no such file or directory (write \"-" + dir + "/missing-global.env\" if the file may be missing)"},
		{4, "services.app.env_file", "open " + dir + "/missing.env: no such file or directory (write \"-"},
		{4, "services.app.env_file", dir + "/bad.env:2: \"1B\" is not a valid variable name"},
		{7, "services.typed.env_file", "must be an array of paths"},
		{10, "services.empty.env_file", "has an empty path"},
		{10, "services.empty.env_file", "has an empty path"},
		{13, "services.typo.env_files", `unknown key; did you mean "env_file"?`},
		{16, "services.other.env_file", dir + "/bad.env:2: "},
	})
	// The whole line, as `tend check` prints it.
	if got, want := errorList(t, err)[2].Error(), "tend.toml:4: services.app.env_file: "+dir+"/bad.env:2: \"1B\" is not a valid variable name: use letters, digits and '_', not starting with a digit"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestEnvFileOptionalMissingLoads(t *testing.T) {
	cfg := mustParse(t, "env_file = \"-/nonexistent/global.env\"\n[services.app]\ncommand = \"true\"\nenv_file = [\"-/nonexistent/app.env\"]\n", nil)
	app := cfg.Services["app"]
	want := []EnvFile{{Path: "/nonexistent/global.env", Optional: true}, {Path: "/nonexistent/app.env", Optional: true}}
	if !slices.Equal(app.EnvFiles, want) {
		t.Fatalf("EnvFiles = %+v, want %+v", app.EnvFiles, want)
	}
	env, err := app.StartEnv()
	if err != nil || !slices.Equal(env, app.Env) {
		t.Fatalf("StartEnv = %q, %v; want Env %q", env, err, app.Env)
	}
}

func TestEnvFileRelativeToTheConfig(t *testing.T) {
	dir := writeEnvFiles(t, map[string]string{"app.env": "FROM=relative\n"})
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "more.env"), []byte("MORE=yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "tend.toml")
	if err := os.WriteFile(cfgPath, []byte("[services.app]\ncommand = \"true\"\nenv_file = [\"app.env\", \"-sub/more.env\", \"-nope.env\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // not the config's directory
	cfg, err := Load(cfgPath, func(string) (string, bool) { return "", false }, WithBaseEnv([]string{"PATH=/bin"}))
	if err != nil {
		t.Fatal(err)
	}
	app := cfg.Services["app"]
	want := []EnvFile{{Path: filepath.Join(dir, "app.env")}, {Path: filepath.Join(dir, "sub", "more.env"), Optional: true}, {Path: filepath.Join(dir, "nope.env"), Optional: true}}
	if !slices.Equal(app.EnvFiles, want) {
		t.Fatalf("EnvFiles = %+v\nwant %+v", app.EnvFiles, want)
	}
	env, err := app.StartEnv()
	if err != nil || !slices.Equal(env, []string{"FROM=relative", "MORE=yes", "PATH=/bin"}) {
		t.Fatalf("StartEnv = %q, %v", env, err)
	}
}

// TestEnvPrecedence: tend's own environment < the user's HOME, USER,
// LOGNAME, SHELL < the top-level env_file < the service's env_file, in list
// order < the service's environment table.
func TestEnvPrecedence(t *testing.T) {
	dir := writeEnvFiles(t, map[string]string{
		"global.env": "G_FILE=global\nS_FILE=global\nTABLE=global\nHOME=/from-global\nONLY_GLOBAL=g\n",
		"first.env":  "S_FILE=first\nTABLE=first\nLATER=first\n",
		"second.env": "LATER=second\n",
	})
	src := strings.ReplaceAll(`env_file = ["DIR/global.env"]
[services.app]
command = "true"
user = "app"
env_file = ["DIR/first.env", "DIR/second.env"]
environment = { TABLE = "table" }
[services.plain]
command = "true"
`, "DIR", dir)
	cfg, err := Parse("tend.toml", []byte(src), func(string) (string, bool) { return "", false },
		WithBaseEnv([]string{"TEND=tend", "G_FILE=tend", "S_FILE=tend", "TABLE=tend", "HOME=/root", "USER=root"}),
		WithUserDB(writePasswd(t)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		service, name, want, from string
	}{
		{"app", "TEND", "tend", "tend's own environment"},
		{"app", "USER", "app", "the user's passwd entry, over tend's"},
		{"app", "HOME", "/from-global", "the top-level env_file, over the user's"},
		{"app", "G_FILE", "global", "the top-level env_file, over tend's"},
		{"app", "ONLY_GLOBAL", "g", "the top-level env_file"},
		{"app", "S_FILE", "first", "the service's env_file, over the top-level one"},
		{"app", "LATER", "second", "the later env_file of the service's list"},
		{"app", "TABLE", "table", "environment, over every env_file"},
		{"plain", "HOME", "/from-global", "the top-level env_file, for every service"},
		{"plain", "S_FILE", "global", "the top-level env_file"},
		{"plain", "LATER", "", "(unset: another service's env_file)"},
	}
	envs := map[string][]string{}
	for name, s := range cfg.Services {
		if envs[name], err = s.StartEnv(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range tests {
		got := ""
		for _, e := range envs[tt.service] {
			if n, v, _ := strings.Cut(e, "="); n == tt.name {
				got = v
			}
		}
		if got != tt.want {
			t.Errorf("%s: %s = %q, want %q from %s", tt.service, tt.name, got, tt.want, tt.from)
		}
	}
	for name, env := range envs {
		for i := 1; i < len(env); i++ {
			if envName(env[i-1]) >= envName(env[i]) {
				t.Errorf("%s: not sorted by name, or a name twice: %q", name, env)
			}
		}
	}
	// Env itself has no env file in it: the files are read at each start.
	if slices.Contains(cfg.Services["app"].Env, "G_FILE=global") {
		t.Errorf("Env holds an env file's variable: %q", cfg.Services["app"].Env)
	}
}

func writePasswd(t *testing.T) (passwd, group string) {
	t.Helper()
	dir := writeEnvFiles(t, map[string]string{"passwd": testPasswd, "group": testGroup})
	return filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
}

func TestStartEnvRereads(t *testing.T) {
	dir := writeEnvFiles(t, map[string]string{"app.env": "FOO=one\n"})
	path := filepath.Join(dir, "app.env")
	cfg := mustParse(t, "[services.app]\ncommand = \"true\"\nenv_file = [\""+path+"\"]\n", nil)
	app := cfg.Services["app"]
	for _, step := range []struct {
		body, want, err string
	}{
		{"", "FOO=one", ""},
		{"FOO=two\n", "FOO=two", ""},
		{"FOO='unclosed\n", "", path + ":1: the single quote opened here is never closed"},
		{"FOO=three\n", "FOO=three", ""},
		{"-", "", "open " + path + ": no such file or directory"},
	} {
		switch step.body {
		case "":
		case "-":
			os.Remove(path)
		default:
			if err := os.WriteFile(path, []byte(step.body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		env, err := app.StartEnv()
		switch {
		case step.err != "":
			if err == nil || err.Error() != step.err {
				t.Errorf("after %q: error %v, want %s", step.body, err, step.err)
			}
		case err != nil || !slices.Contains(env, step.want):
			t.Errorf("after %q: %q, %v; want %s", step.body, env, err, step.want)
		}
	}
}

func TestEnvFileReload(t *testing.T) {
	dir := writeEnvFiles(t, map[string]string{"a.env": "A=1\n", "b.env": "B=1\n"})
	src := "[services.app]\ncommand = \"true\"\nenv_file = [\"" + dir + "/a.env\"]\n"
	a1, a2 := mustParse(t, src, nil).Services["app"], mustParse(t, src, nil).Services["app"]
	if !a2.Equal(a1) {
		t.Error("the same env_file is a change")
	}
	if err := os.WriteFile(filepath.Join(dir, "a.env"), []byte("A=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if a3 := mustParse(t, src, nil).Services["app"]; !a3.Equal(a1) {
		t.Error("a changed file's contents is a change of the definition; it applies at the next start instead")
	}
	b := mustParse(t, strings.Replace(src, "a.env", "b.env", 1), nil).Services["app"]
	if b.Equal(a1) || b.RestartSettingsOnlyChanged(a1) {
		t.Error("a new env_file list is not a change of the definition")
	}
	g := mustParse(t, "env_file = \"-/x.env\"\n"+src, nil).Services["app"]
	if g.Equal(a1) {
		t.Error("a new top-level env_file is not a change of the service")
	}
}

// FuzzParseEnvFile: whatever the bytes, the parse returns (never panics,
// never loops), and what it accepts can be given to a program: valid
// names, values without a NUL, valid UTF-8, lines in order; an error names
// the file and a line of it.
func FuzzParseEnvFile(f *testing.F) {
	for _, seed := range []string{
		"A=1\nB='x\ny'\nC=\"a\\\"b\\\n c\"\n", "export A=1\r\n# c\r\n; d\r\nB=x\\\r\ny\r\n",
		"A=\"x", "1A=2", "A='x'y", "\ufeffA=\xff", "A=\x00", "=", "\\\n", "A=\\", "A=\"\\",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseEnvFile("f", data)
		if err != nil {
			var fe *EnvFileError
			lines := 1 + strings.Count(string(data), "\n")
			if !errors.As(err, &fe) || fe.File != "f" || fe.Line < 1 || fe.Line > lines {
				t.Fatalf("error %v (%T) does not name a line of the file's %d", err, err, lines)
			}
			return
		}
		last := 0
		for _, v := range vars {
			if badVarName(v.Name) != "" || strings.IndexByte(v.Value, 0) >= 0 || !utf8.ValidString(v.Value) || v.Line < last {
				t.Fatalf("accepted %+v", v)
			}
			last = v.Line
		}
	})
}
