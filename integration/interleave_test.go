package integration

// Interleavings a user met with the first supervisor: each test here failed
// on it (a panic, a lost stop, an early exit) and must pass now.

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// processesWith counts the shells whose argv ends in marker.
func processesWith(marker string) int {
	n := 0
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 0 && args[len(args)-1] == marker && alive(dirPid(e.Name())) {
			n++
		}
	}
	return n
}

// dirPid is the PID a /proc entry names, or -1.
func dirPid(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// stubborn is a service that ignores SIGTERM, so it stays in "stopping"
// until its stop_timeout sends SIGKILL; marker names its processes.
func stubborn(marker string) string {
	return `command = ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done", "` + marker + `"]`
}

func TestReAddedWhileStoppingRunsOnce(t *testing.T) {
	needRoot(t)
	marker := "tend-readd-" + strings.ReplaceAll(t.Name(), "/", "-")
	old := "[services.old]\n" + stubborn(marker) + "\nstop_timeout = \"2s\"\n"
	keep := "[services.keep]\ncommand = \"sleep 300\"\n"
	c := startControlled(t, old+keep)
	c.waitState(t, "old", "running")

	c.reconfigure(t, keep)
	if _, errOut, code := c.ctl(t, "reload"); code != 0 {
		t.Fatalf("reload without old: exit %d: %s", code, errOut)
	}
	// old ignores SIGTERM: it is still stopping when it comes back, with a
	// new service that depends on it.
	c.reconfigure(t, old+keep+"[services.dependant]\ncommand = \"sleep 300\"\ndepends_on = [\"old\"]\n")
	if _, errOut, code := c.ctl(t, "reload"); code != 0 {
		t.Fatalf("reload with old back: exit %d: %s", code, errOut)
	}
	c.waitState(t, "dependant", "running")
	c.waitState(t, "old", "running")
	if n := processesWith(marker); n != 1 {
		t.Fatalf("%d processes of old run, want 1\n%s", n, c.errb.String())
	}
	if strings.Contains(c.errb.String(), "panic") {
		t.Fatalf("tend panicked:\n%s", c.errb.String())
	}
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatalf("shutdown: exit %d", code)
	}
	if res := c.wait(t, 20*time.Second); res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
}

func TestOperatorStopWinsOverFailedCheck(t *testing.T) {
	needRoot(t)
	marker := "tend-failing-" + strings.ReplaceAll(t.Name(), "/", "-")
	c := startControlled(t, "[services.x]\n"+stubborn(marker)+`
stop_timeout = "2s"
backoff = { delay = "10ms" }
[services.x.health]
exec = ["false"]
interval = "200ms"
threshold = 1
`)
	// The failed check has tend stopping x; x ignores SIGTERM for 2s.
	c.waitState(t, "x", "stopping")
	out, errOut, code := c.ctl(t, "stop", "x")
	if code != 0 {
		t.Fatalf("stop while stopping: exit %d: %s%s", code, out, errOut)
	}
	// Before: the stop was answered and lost; x went on to restart.
	c.waitState(t, "x", "stopped")
	time.Sleep(time.Second) // longer than the backoff
	if s := c.status(t)["x"]; s["state"] != "stopped" || processesWith(marker) != 0 {
		t.Fatalf("x came back after an operator stopped it: %v\n%s", s, c.errb.String())
	}
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatalf("shutdown: exit %d", code)
	}
	c.wait(t, 20*time.Second)
}

func TestStoppingTheLastServiceKeepsTendRunning(t *testing.T) {
	needRoot(t)
	c := startControlled(t, "[services.only]\ncommand = \"sleep 300\"\n")
	for round := range 5 {
		c.waitState(t, "only", "running")
		out, errOut, code := c.ctl(t, "stop", "only")
		if code != 0 || !strings.Contains(out, "only") {
			t.Fatalf("round %d: stop of the last service: exit %d, answer %q %s", round, code, out, errOut)
		}
		c.waitState(t, "only", "stopped")
		select {
		case res := <-c.done:
			t.Fatalf("round %d: tend exited (%d) after an operator stopped its last service\n%s", round, res.code, res.stderr)
		case <-time.After(300 * time.Millisecond):
		}
		if _, errOut, code := c.ctl(t, "start", "only"); code != 0 {
			t.Fatalf("round %d: start: exit %d: %s", round, code, errOut)
		}
	}
	out, errOut, code := c.ctl(t, "shutdown")
	if code != 0 {
		t.Fatalf("shutdown was not answered: exit %d: %q %s", code, out, errOut)
	}
	if res := c.wait(t, 20*time.Second); res.code != 0 {
		t.Fatalf("exit %d after an operator shutdown\n%s", res.code, res.stderr)
	}
}
