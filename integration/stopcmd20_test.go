package integration

// Issue 20: stop_command runs instead of the stop signal; a stop_command
// that hangs or fails still ends in SIGKILL after stop_timeout.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStopCommand: the service ignores SIGTERM and ends only when its
// stop_command (which sees the service's environment) tells it to; a
// second service whose stop_command fails and hangs is killed after its
// stop_timeout.
func TestStopCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	flag := filepath.Join(dir, "stop-now")
	c := startControlled(t, `
[services.polite]
command = ["sh", "-c", "trap '' TERM; while [ ! -e `+flag+` ]; do sleep 0.05; done; echo stopped by its command"]
stop_command = ["sh", "-c", "echo stop_command sees $WHO; touch `+flag+`"]
environment = { WHO = "polite" }
stop_timeout = "20s"
restart = "never"

[services.stuck]
command = ["sh", "-c", "trap '' TERM; exec sleep 300"]
stop_command = ["sh", "-c", "exit 3"]
stop_timeout = "1s"
restart = "never"
`)
	c.waitState(t, "polite", "running")
	c.waitState(t, "stuck", "running")
	start := time.Now()
	if _, errOut, code := c.ctl(t, "stop", "polite"); code != 0 {
		t.Fatalf("ctl stop polite: %d %s", code, errOut)
	}
	c.waitState(t, "polite", "stopped")
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("polite took %s to stop: its stop_command was not run", took)
	}
	if _, errOut, code := c.ctl(t, "stop", "stuck"); code != 0 {
		t.Fatalf("ctl stop stuck: %d %s", code, errOut)
	}
	c.waitState(t, "stuck", "stopped")
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatal("shutdown failed")
	}
	res := c.wait(t, 15*time.Second)
	for _, want := range []string{
		"stop_command sees polite",
		"polite | stopped by its command",
		"running → stopping: operator stop: running stop_command sh",
		"stop_command sh: exit code 3; stop_timeout 1s decides",
		"SIGKILL",
	} {
		if !strings.Contains(res.stderr+res.stdout, want) {
			t.Errorf("output lacks %q:\n%s%s", want, res.stdout, res.stderr)
		}
	}
	if _, err := os.Stat(flag); err != nil {
		t.Errorf("the stop_command did not run: %v", err)
	}
}
