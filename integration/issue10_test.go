package integration

// Reliability fixes met as a user (issue 10) that live in the supervisor,
// the config and the command line: each failed on the landed code.

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNotifyOnlyFromTheService: sd_notify's READY=1 counts only from the
// service's own processes, as systemd's NotifyAccess; before, any process
// that could reach the (predictable) address made a service ready.
func TestNotifyOnlyFromTheService(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	c := startControlled(t, `
[services.svc]
command = ["sh", "-c", "echo \"$NOTIFY_SOCKET\" > `+dir+`/addr; while [ ! -e `+dir+`/go ]; do sleep 0.05; done; exec `+progBin+` notify 0s"]
[services.svc.ready]
notify = true
`)
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" && time.Now().Before(deadline) {
		b, _ := os.ReadFile(filepath.Join(dir, "addr"))
		addr = strings.TrimSpace(string(b))
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.HasPrefix(addr, "@") {
		t.Fatalf("NOTIFY_SOCKET %q", addr)
	}
	// A stranger (this test) says READY=1 for the service.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := conn.Write([]byte("READY=1\nSTATUS=forged\n")); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	time.Sleep(500 * time.Millisecond)
	if s := c.status(t)["svc"]; s["ready"] != false {
		t.Fatalf("a READY=1 from outside the service made it ready: %v", s)
	}
	if !strings.Contains(c.errb.String(), "notify message(s) from processes outside the service") {
		t.Errorf("the forged messages were not reported:\n%s", c.errb.String())
	}
	// The service's own process is believed.
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for c.status(t)["svc"]["ready"] != true {
		if time.Now().After(deadline) {
			t.Fatalf("the service's own READY=1 was not taken\n%s", c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.ctl(t, "shutdown")
	c.wait(t, 20*time.Second)
}

// TestUnreceivableRewriteRefused: -r 34:15 could never apply (the Go
// runtime keeps 32-34); it was accepted, and is now a one-line error.
func TestUnreceivableRewriteRefused(t *testing.T) {
	for _, spec := range []string{"34:15", "32:15", "9:15"} {
		res := run{args: []string{"-r", spec, "--", "true"}}.do(t)
		if res.code != 2 || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0 || !strings.Contains(res.stderr, spec) {
			t.Errorf("-r %s: exit %d, stderr %q; want 2 and one line naming it", spec, res.code, res.stderr)
		}
	}
}

// TestServiceUserGetsItsHome: a service with user = "nobody" gets HOME,
// USER, LOGNAME and SHELL from the passwd entry (it inherited HOME=/root).
func TestServiceUserGetsItsHome(t *testing.T) {
	needRoot(t)
	cfg := writeConfig(t, `
[services.who]
command = ["sh", "-c", "echo HOME=$HOME USER=$USER LOGNAME=$LOGNAME"]
user = "nobody"
oneshot = true
[services.set]
command = ["sh", "-c", "echo HOME=$HOME"]
user = "nobody"
environment = { HOME = "/srv" }
oneshot = true
`)
	res := run{pid1: true, args: []string{"--config", cfg}}.do(t)
	home := "/"
	if b, err := os.ReadFile("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Split(line, ":"); len(f) >= 7 && f[0] == "nobody" {
				home = f[5]
			}
		}
	}
	if res.code != 0 || !strings.Contains(res.stdout, "who | HOME="+home+" USER=nobody LOGNAME=nobody") || !strings.Contains(res.stdout, "set | HOME=/srv") {
		t.Fatalf("exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
}
