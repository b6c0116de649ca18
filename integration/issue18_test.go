package integration

// Issue 18: terminals, files and the first milliseconds. Each test here
// fails on f3f5e78 (run it with TEND_BIN_UNDER_TEST=<old tend>).

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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

// TestBackgroundTerminalWithTostop: tend started in the background of an
// interactive shell whose terminal has tostop set. Its own writes to the
// terminal made the kernel send SIGTTOU to its group and restart the write;
// tend forwarded each to its child, which stopped, and spun at 100 % CPU
// without end. Now the write goes through and the program finishes, in
// wrapper mode and in supervisor mode with a prefixed service.
func TestBackgroundTerminalWithTostop(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("script"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs script from util-linux")
		}
		t.Skip("needs script from util-linux")
	}
	cfg := writeConfig(t, `
control_socket = ""
[services.talk]
command = ["sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done; echo done"]
oneshot = true
`)
	for _, mode := range []struct{ name, args string }{
		{"wrapper", "-vv -- sh -c 'for i in 1 2 3; do echo line $i; sleep 0.2; done; echo done'"},
		{"supervisor", "-vv --config " + cfg},
	} {
		t.Run(mode.name, func(t *testing.T) {
			// set -m: the shell runs tend as a background job, in a process
			// group of its own that is not the terminal's foreground.
			script := filepath.Join(t.TempDir(), "job.sh")
			body := fmt.Sprintf("stty tostop\nset -m\n%s %s &\nwait\necho rc=$?\ntimes\n", binUnderTest(), mode.args)
			if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			start := time.Now()
			out, _ := exec.CommandContext(ctx, "script", "-qec", "sh "+script, "/dev/null").CombinedOutput()
			text := strings.ReplaceAll(string(out), "\r", "")
			if ctx.Err() != nil {
				t.Fatalf("tend did not finish in 15 s (its child stopped by forwarded SIGTTOUs?):\n%s", lastLines(text, 10))
			}
			if !strings.Contains(text, "done") || !strings.Contains(text, "rc=0") {
				t.Fatalf("the program did not finish cleanly:\n%s", lastLines(text, 10))
			}
			// times: the shell's own CPU, then its children's (tend and
			// everything under it).
			var um, us, sm, ss float64
			lines := strings.Split(strings.TrimSpace(text), "\n")
			fmt.Sscanf(lines[len(lines)-1], "%fm%fs %fm%fs", &um, &us, &sm, &ss)
			cpu := time.Duration((um*60 + us + sm*60 + ss) * float64(time.Second))
			t.Logf("%s: finished in %s, children's CPU %s", mode.name, time.Since(start).Round(time.Millisecond), cpu)
			if cpu > time.Second {
				t.Errorf("tend and its child used %s of CPU for a 0.6 s job: a spin", cpu)
			}
		})
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
