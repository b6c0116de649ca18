package integration

// Issue 19: services that wait to be started, readiness that comes and
// goes, and health checks that only report. Real tend, real processes,
// `tend ctl` over the socket.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAutostartFalseWaitsForAnOperator: db (autostart = false) stays idle
// and says why, web (depends on db) waits, `tend ctl health` does not
// count db; `tend ctl start db` starts it, then web.
func TestAutostartFalseWaitsForAnOperator(t *testing.T) {
	t.Parallel()
	c := startControlled(t, `
[services.db]
command = "sleep 300"
autostart = false
[services.web]
command = "sleep 300"
depends_on = ["db"]
[services.other]
command = "sleep 300"
`)
	defer c.shutdown(t)
	c.waitState(t, "other", "running")
	time.Sleep(500 * time.Millisecond)
	st := c.status(t)
	if st["db"]["state"] != "idle" || st["web"]["state"] != "idle" {
		t.Fatalf("db %v, web %v: want both idle", st["db"]["state"], st["web"]["state"])
	}
	if r, _ := st["db"]["reason"].(string); !strings.Contains(r, "autostart = false") {
		t.Errorf("db's reason %q", r)
	}
	if out, _, code := c.ctl(t, "health"); code == 0 || strings.Contains(out, "  db ") || !strings.Contains(out, "  web ") {
		t.Errorf("health exit %d, %q: want unhealthy for web only", code, out)
	}
	if _, errOut, code := c.ctl(t, "start", "db"); code != 0 {
		t.Fatalf("ctl start db: %d %s", code, errOut)
	}
	c.waitState(t, "db", "running")
	c.waitState(t, "web", "running")
}

// TestReadinessFlipsWithoutKilling: a ready check that keeps probing
// (period) makes the service not ready and ready again while its one
// process keeps running; a health check with on_failure = "ignore" makes
// it unhealthy and healthy again, never restarted.
func TestReadinessFlipsWithoutKilling(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ready, healthy := filepath.Join(dir, "ready"), filepath.Join(dir, "healthy")
	for _, f := range []string{ready, healthy} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := startControlled(t, `
[services.web]
command = "sleep 300"
[services.web.ready]
file = "`+ready+`"
interval = "100ms"
period = "200ms"
threshold = 1
[services.web.health]
file = "`+healthy+`"
interval = "200ms"
threshold = 1
on_failure = "ignore"
`)
	defer c.shutdown(t)
	c.waitState(t, "web", "running")
	pid := c.pid(t, "web")
	waitFlag := func(flag string, want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if got, _ := c.status(t)["web"][flag].(bool); got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became %v: %v", flag, want, c.status(t)["web"])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFlag("ready", true)
	os.Remove(ready)
	waitFlag("ready", false)
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFlag("ready", true)
	waitFlag("healthy", true)
	os.Remove(healthy)
	waitFlag("healthy", false)
	if err := os.WriteFile(healthy, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFlag("healthy", true)
	if got := c.pid(t, "web"); got != pid || c.status(t)["web"]["restarts"].(float64) != 0 {
		t.Errorf("web's process went from %d to %d (restarts %v): nothing may be stopped", pid, got, c.status(t)["web"]["restarts"])
	}
}

// shutdown ends tend through the control API and waits for it.
func (c *controlled) shutdown(t *testing.T) {
	t.Helper()
	if _, errOut, code := c.ctl(t, "shutdown"); code != 0 {
		t.Errorf("ctl shutdown: %d %s", code, errOut)
	}
	c.wait(t, 15*time.Second)
}
