package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 19: a base file and a derived directory of two files, one of them
// overriding a service's command. tend runs the merged services; `tend ctl
// reload` after one file changed restarts only the service it defines; an
// invalid included file changes nothing and is named with its line.
func TestIncludeTreeAndReload(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	socket := filepath.Join(dir, "tend.sock")
	write := func(name, body string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		// As a deployment would: a new file renamed over the old one.
		if err := os.WriteFile(path+".new", []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	write("tend.toml", `control_socket = "`+socket+`"
include = ["tend.d/*.toml"]

[services.web]
command = ["sh", "-c", "echo web from the base; exec sleep 300"]
environment = { GREETING = "base" }

[services.worker]
command = "sleep 300"
`)
	write("tend.d/10-web.toml", `# the derived image's web
[services.web]
override = "merge"
command = ["sh", "-c", "echo web from the derived image, $GREETING; exec sleep 300"]
`)
	write("tend.d/20-cache.toml", `[services.cache]
command = "sleep 300"
`)
	main := filepath.Join(dir, "tend.toml")

	out, err := exec.Command(tendBin, "check", main).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok, 3 service(s) from 3 files") {
		t.Fatalf("tend check: %v\n%s", err, out)
	}

	c := &controlled{started: run{pid1: true, args: []string{"--config", main}}.start(t), socket: socket, config: main}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket\n%s", c.errb.String())
		}
	}
	for _, name := range []string{"web", "worker", "cache"} {
		c.waitState(t, name, "running")
	}
	c.waitOutput(t, "web | web from the derived image, base", 5*time.Second)
	if strings.Contains(c.out.String(), "web from the base") {
		t.Fatalf("the base's command ran:\n%s", c.out.String())
	}
	pids := func() map[string]int {
		return map[string]int{"web": c.pid(t, "web"), "worker": c.pid(t, "worker"), "cache": c.pid(t, "cache")}
	}
	before := pids()

	// An invalid included file: nothing changes, and the error says where.
	write("tend.d/20-cache.toml", "[services.cache]\ncommand = \"sleep 301\"\nrestart = \"sometimes\"\n")
	_, errOut, code := c.ctl(t, "reload")
	if code != 1 || !strings.Contains(errOut, filepath.Join(dir, "tend.d/20-cache.toml")+":3: services.cache.restart") {
		t.Fatalf("reload of an invalid included file: exit %d: %s", code, errOut)
	}
	time.Sleep(300 * time.Millisecond)
	if now := pids(); now["web"] != before["web"] || now["worker"] != before["worker"] || now["cache"] != before["cache"] {
		t.Fatalf("an invalid reload touched services: %v, were %v", now, before)
	}

	// One file changed: only its service restarts.
	write("tend.d/20-cache.toml", "[services.cache]\ncommand = \"sleep 301\"\n")
	if _, errOut, code := c.ctl(t, "reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s", code, errOut)
	}
	waitNewPid(t, c, "cache", before["cache"])
	if now := pids(); now["web"] != before["web"] || now["worker"] != before["worker"] {
		t.Fatalf("a reload of 20-cache.toml restarted others: %v, were %v", now, before)
	}

	// The override changed: web restarts with the new merge, the others
	// stay.
	mid := pids()
	write("tend.d/10-web.toml", `[services.web]
override = "merge"
environment = { GREETING = "again" }
command = ["sh", "-c", "echo web from the derived image, $GREETING; exec sleep 300"]
`)
	if _, errOut, code := c.ctl(t, "reload"); code != 0 {
		t.Fatalf("reload: exit %d: %s", code, errOut)
	}
	waitNewPid(t, c, "web", mid["web"])
	c.waitOutput(t, "web | web from the derived image, again", 5*time.Second)
	if now := pids(); now["worker"] != mid["worker"] || now["cache"] != mid["cache"] {
		t.Fatalf("a reload of 10-web.toml restarted others: %v, were %v", now, mid)
	}

	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatal("shutdown failed")
	}
	if res := c.wait(t, 15*time.Second); res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
}

// waitNewPid waits until service name runs with a PID other than old.
func waitNewPid(t *testing.T, c *controlled, name string, old int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := c.status(t)[name]
		if pid := c.pid(t, name); s != nil && s["state"] == "running" && pid != old && pid != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not restarted: %v\n%s", name, s, c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
