package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEnvFileRereadAtRestart (issue 19): a real service, `sh -c 'echo
// $FOO'`, reads FOO from an env file, and each restart sees the file as it
// is then, with no reload; a file gone bad makes the start fail with the
// file and line in tend's log and the service's reason, and tend carries on
// until it is mended.
func TestEnvFileRereadAtRestart(t *testing.T) {
	needRoot(t)
	envDir := t.TempDir()
	envPath := filepath.Join(envDir, "app.env")
	write := func(path, body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(envPath, "# the app's settings\nFOO=one\n")
	c := startControlled(t, `
[services.app]
command = ["sh", "-c", "echo \"got FOO=[$FOO] BAR=[$BAR]\"; sleep 0.1"]
env_file = ["`+envPath+`", "-local.env"]
backoff = { type = "fixed", delay = "200ms" }
crash_loop = { max_restarts = 1000, window = "60s", backoff = "1s" }
`)
	c.waitOutput(t, "app | got FOO=[one] BAR=[]\n", 10*time.Second)

	write(envPath, "FOO='two words'\n")
	c.waitOutput(t, "app | got FOO=[two words] BAR=[]\n", 10*time.Second)

	// The optional file, relative to the config's directory, once it exists.
	write(filepath.Join(filepath.Dir(c.config), "local.env"), "export BAR=\"local \\$x\"\n")
	c.waitOutput(t, "app | got FOO=[two words] BAR=[local $x]\n", 10*time.Second)

	write(envPath, "FOO=two\n1BAD=x\n")
	want := "cannot start: env_file: " + envPath + `:2: "1BAD" is not a valid variable name`
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.errb.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in tend's log\n%s", want, c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := c.status(t)["app"]
	if reason, _ := st["reason"].(string); !strings.HasPrefix(reason, want) {
		t.Errorf("status reason %q, want %q", reason, want)
	}
	if st["state"] == "running" {
		t.Errorf("state running with a bad env file: %v", st)
	}

	write(envPath, "FOO=three\n")
	c.waitOutput(t, "app | got FOO=[three] BAR=[local $x]\n", 10*time.Second)
	if _, errOut, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatalf("shutdown: exit %d: %s", code, errOut)
	}
	c.wait(t, 15*time.Second)
}

// TestCheckReadsEnvFiles: `tend check` reads every env file and reports a
// required one that is missing, and a bad line, each on its env_file line;
// tend --config refuses the file and starts nothing.
func TestCheckReadsEnvFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.env"), []byte("A=1\nB=\"x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `env_file = "-`+dir+`/optional.env"
[services.app]
command = "true"
env_file = ["`+dir+`/missing.env", "`+dir+`/bad.env"]
`)
	res := run{args: []string{"check", cfg}, timeout: 10 * time.Second}.do(t)
	want := cfg + ":4: services.app.env_file: open " + dir + "/missing.env: no such file or directory (write \"-" + dir + "/missing.env\" if the file may be missing)\n" +
		cfg + ":4: services.app.env_file: " + dir + "/bad.env:2: the double quote opened here is never closed\n"
	if res.code != 1 || res.stdout+res.stderr != want {
		t.Fatalf("tend check: exit %d\n%s%s\nwant exit 1 and\n%s", res.code, res.stdout, res.stderr, want)
	}
	res = run{args: []string{"--config", cfg}, timeout: 10 * time.Second}.do(t)
	if res.code != 2 || !strings.Contains(res.stderr, "bad.env:2: the double quote") {
		t.Fatalf("tend --config: exit %d\n%s", res.code, res.stderr)
	}
}
