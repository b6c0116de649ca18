package integration

// Issue 18: terminals, files and the first milliseconds. Each test here
// fails on f3f5e78 (run it with TEND_BIN_UNDER_TEST=<old tend>).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOutputFileSymlinkNotFollowed: output = PATH is opened by tend as
// root. A service user who can write the log's directory plants a symlink
// to a root-only file there: tend must refuse to start the service, say
// why, and leave the file alone.
func TestOutputFileSymlinkNotFollowed(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o777); err != nil { // the service's user may write here
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(logs, "out.log")); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`
control_socket = ""
[services.app]
command = ["sh", "-c", "echo planted"]
user = "nobody"
output = %q
oneshot = true
`, filepath.Join(logs, "out.log")))
	res := run{pid1: true, bin: binUnderTest(), args: []string{"--config", cfg}, timeout: 20 * time.Second}.do(t)
	got, _ := os.ReadFile(secret)
	if string(got) != "root only\n" {
		t.Fatalf("the root-only file was written through the symlink: %q", got)
	}
	if !strings.Contains(res.stderr, "is a symbolic link, which tend does not follow") {
		t.Fatalf("no word of the refused symlink:\n%s", tail(res.stderr))
	}
}

// TestLeftoversGetSIGCONTOnlyWhenStopped: at exit, a running leftover gets
// SIGTERM and nothing else (dumb-init's suite counts the signals); a
// stopped one gets SIGCONT too, so that it can act on the SIGTERM.
func TestLeftoversGetSIGCONTOnlyWhenStopped(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	running, stopped := filepath.Join(dir, "running"), filepath.Join(dir, "stopped")
	// Each leftover records the signals it handles; the TERM trap lets the
	// loop end, so a CONT sent with it is recorded too.
	leftover := func(file, first string) string {
		script := fmt.Sprintf(`trap 'echo TERM >> %[1]s; t=1' TERM
trap 'echo CONT >> %[1]s' CONT
echo up > %[1]s.up
%[2]s
while [ -z "$t" ]; do sleep 0.05; done
sleep 0.2
`, file, first)
		if err := os.WriteFile(file+".sh", []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		return file + ".sh"
	}
	script := fmt.Sprintf("sh %s & sh %s & sleep 0.5", leftover(running, ""), leftover(stopped, "kill -STOP $$"))
	res := run{pid1: true, bin: binUnderTest(), args: []string{"--", "sh", "-c", script}, env: []string{"TEND_GRACE=5s"}, timeout: 20 * time.Second}.do(t)
	got := func(f string) string { b, _ := os.ReadFile(f); return strings.TrimSpace(string(b)) }
	if got(running+".up") == "" || got(stopped+".up") == "" {
		t.Fatalf("the leftovers did not start:\n%s", tail(res.stderr))
	}
	if s := got(running); s != "TERM" {
		t.Errorf("the running leftover handled %q, want only TERM", s)
	}
	if s := got(stopped); !strings.Contains(s, "TERM") {
		t.Errorf("the stopped leftover handled %q: it was never continued to act on its SIGTERM", s)
	}
	if res.elapsed > 4*time.Second {
		t.Errorf("tend took %s: a leftover waited for the SIGKILL", res.elapsed.Round(time.Millisecond))
	}
}
