package integration

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// controlled is a supervisor-mode tend with a control socket.
type controlled struct {
	*started
	socket string
	config string
}

func startControlled(t *testing.T, body string) *controlled {
	t.Helper()
	return startControlledWith(t, body, func(cfg string) run { return run{pid1: true, args: []string{"--config", cfg}} })
}

// startControlledWith writes body with a control socket of its own and
// starts the run that tendRun makes for the config file; it returns once
// the socket is there.
func startControlledWith(t *testing.T, body string, tendRun func(cfg string) run) *controlled {
	t.Helper()
	dir := t.TempDir()
	socket := filepath.Join(dir, "tend.sock")
	cfg := filepath.Join(dir, "tend.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("control_socket = %q\n%s", socket, body)), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &controlled{started: tendRun(cfg).start(t), socket: socket, config: cfg}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(socket); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no control socket\n%s", c.errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

// reconfigure rewrites the config file (keeping the socket line).
func (c *controlled) reconfigure(t *testing.T, body string) {
	t.Helper()
	if err := os.WriteFile(c.config, []byte(fmt.Sprintf("control_socket = %q\n%s", c.socket, body)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ctl runs `tend ctl` against this tend.
func (c *controlled) ctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(tendBin, append([]string{"ctl", "--socket", c.socket}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), exitCode(err)
}

// status returns the services as the API shows them, by name.
func (c *controlled) status(t *testing.T) map[string]map[string]any {
	t.Helper()
	out, errOut, code := c.ctl(t, "status", "--json")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var list struct {
		Services []map[string]any `json:"services"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("status --json: %v: %s", err, out)
	}
	byName := map[string]map[string]any{}
	for _, s := range list.Services {
		byName[s["name"].(string)] = s
	}
	return byName
}

func (c *controlled) pid(t *testing.T, name string) int {
	s := c.status(t)[name]
	if s == nil || s["pid"] == nil {
		return 0
	}
	return int(s["pid"].(float64))
}

// waitState waits until service name is in state.
func (c *controlled) waitState(t *testing.T, name, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := c.status(t)[name]
		if s != nil && s["state"] == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %s: %v\n%s", name, state, s, c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const twoServices = `
[services.web]
command = "sleep 300"
[services.worker]
command = "sleep 300"
restart = "unless-stopped"
`

func TestControlVerbs(t *testing.T) {
	needRoot(t)
	c := startControlled(t, twoServices+`
[services.sig]
command = ["sh", "-c", "trap 'echo got USR1' USR1; while :; do sleep 0.05; done"]
`)
	c.waitState(t, "web", "running")
	fi, err := os.Stat(c.socket)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	out, _, code := c.ctl(t, "status")
	if code != 0 || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "READY") || !strings.Contains(out, "LAST-EXIT") {
		t.Fatalf("status table: exit %d\n%s", code, out)
	}
	if out, _, code = c.ctl(t, "status", "web"); code != 0 || !strings.Contains(out, "web") || strings.Contains(out, "worker") {
		t.Fatalf("status web: %d\n%s", code, out)
	}
	if _, errOut, code := c.ctl(t, "status", "nope"); code != 1 || !strings.Contains(errOut, "no such service") {
		t.Fatalf("status nope: %d %s", code, errOut)
	}
	if out, _, code := c.ctl(t, "health"); code != 0 || strings.TrimSpace(out) != "healthy" {
		t.Fatalf("health: %d %s", code, out)
	}

	// stop, then start and restart
	// PIDs from the API are those inside tend's PID namespace: compare
	// them, never signal them from here.
	if _, errOut, code := c.ctl(t, "stop", "web"); code != 0 {
		t.Fatalf("stop: %s", errOut)
	}
	c.waitState(t, "web", "stopped")
	if out, _, code := c.ctl(t, "health"); code != 1 || !strings.Contains(out, "web is stopped") {
		t.Fatalf("health with web stopped: %d %s", code, out)
	}
	if _, _, code := c.ctl(t, "start", "web"); code != 0 {
		t.Fatal("start failed")
	}
	c.waitState(t, "web", "running")
	second := c.pid(t, "web")
	if _, errOut, code := c.ctl(t, "start", "web"); code != 1 || !strings.Contains(errOut, "running") {
		t.Fatalf("start of a running service: %d %s", code, errOut)
	}
	if _, _, code := c.ctl(t, "restart", "web"); code != 0 {
		t.Fatal("restart failed")
	}
	c.waitState(t, "web", "running")
	if third := c.pid(t, "web"); third == second || third == 0 {
		t.Fatalf("restart kept pid %d", third)
	}

	// signal
	if _, errOut, code := c.ctl(t, "signal", "sig", "USR1"); code != 0 {
		t.Fatalf("signal: %s", errOut)
	}
	c.waitOutput(t, "sig | got USR1", 5*time.Second)
	if _, errOut, code := c.ctl(t, "signal", "sig", "NOPE"); code != 1 || !strings.Contains(errOut, "unknown signal") {
		t.Fatalf("bad signal: %d %s", code, errOut)
	}

	// shutdown
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatal("shutdown failed")
	}
	res := c.wait(t, 15*time.Second)
	if res.code != 0 {
		t.Fatalf("exit %d after an operator shutdown", res.code)
	}
}

func TestReload(t *testing.T) {
	needRoot(t)
	c := startControlled(t, `
[services.same]
command = "sleep 300"
[services.changed]
command = "sleep 300"
[services.retuned]
command = "sleep 300"
[services.removed]
command = "sleep 300"
[services.held]
command = "sleep 300"
restart = "unless-stopped"
[services.held-always]
command = "sleep 300"
`)
	for _, name := range []string{"same", "changed", "retuned", "removed", "held", "held-always"} {
		c.waitState(t, name, "running")
	}
	before := map[string]int{}
	for name := range c.status(t) {
		before[name] = c.pid(t, name)
	}
	c.ctl(t, "stop", "held")
	c.ctl(t, "stop", "held-always")
	c.waitState(t, "held", "stopped")
	c.waitState(t, "held-always", "stopped")

	// An invalid config changes nothing and says why.
	c.reconfigure(t, `
[services.same]
command = "sleep 300"
restart = "sometimes"
`)
	if _, errOut, code := c.ctl(t, "reload"); code != 1 || !strings.Contains(errOut, "services.same.restart") {
		t.Fatalf("invalid reload: exit %d: %s", code, errOut)
	}
	for _, name := range []string{"same", "changed", "retuned", "removed"} {
		if pid := c.pid(t, name); pid != before[name] {
			t.Fatalf("an invalid reload touched %s: pid %d, was %d", name, pid, before[name])
		}
	}

	c.reconfigure(t, `
[services.same]
command = "sleep 300"
[services.changed]
command = "sleep 301"
[services.retuned]
command = "sleep 300"
restart = "on-failure"
backoff = { delay = "3s" }
[services.added]
command = "sleep 300"
[services.held]
command = "sleep 300"
restart = "unless-stopped"
[services.held-always]
command = "sleep 300"
`)
	// SIGHUP reloads too; use it here, the API above.
	syscall.Kill(c.tendPid(t, true), syscall.SIGHUP)
	c.waitState(t, "added", "running")
	c.waitState(t, "changed", "running")
	after := c.status(t)
	if _, ok := after["removed"]; ok {
		c.waitState(t, "removed", "gone") // fails with the state it is in
	}
	if c.pid(t, "same") != before["same"] || c.pid(t, "retuned") != before["retuned"] {
		t.Fatal("an unchanged or restart-settings-only service was restarted")
	}
	if c.pid(t, "changed") == before["changed"] {
		t.Fatal("a changed service was not restarted")
	}
	if after["held"]["state"] != "stopped" {
		t.Fatalf("an operator-stopped unless-stopped service was started by a reload: %v", after["held"])
	}
	if after["held-always"]["state"] != "running" {
		t.Fatalf("an operator-stopped always service was not started again by a reload: %v", after["held-always"])
	}
	// The new restart settings apply from the next exit.
	if _, errOut, code := c.ctl(t, "signal", "retuned", "KILL"); code != 0 {
		t.Fatal(errOut)
	}
	c.waitState(t, "retuned", "restarting")
	if !strings.Contains(c.errb.String(), "next start in 3s") {
		t.Fatalf("the new backoff was not used:\n%s", c.errb.String())
	}
}

func TestControlRefusesStrangers(t *testing.T) {
	needRoot(t)
	c := startControlled(t, twoServices)
	nobody := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	os.Chmod(workDir, 0o755) // let nobody run the binary and reach the socket
	for dir := filepath.Dir(c.socket); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		os.Chmod(dir, 0o755)
	}
	asNobody := func() (string, int) {
		cmd := exec.Command(tendBin, "ctl", "--socket", c.socket, "status")
		cmd.SysProcAttr = nobody
		out, err := cmd.CombinedOutput()
		return string(out), exitCode(err)
	}
	// Mode 0600: the kernel refuses the connection.
	if out, code := asNobody(); code != 1 || !strings.Contains(out, "permission denied") {
		t.Fatalf("exit %d: %s", code, out)
	}
	// Even with the mode opened up, tend refuses by the peer's uid.
	os.Chmod(c.socket, 0o666)
	if out, code := asNobody(); code != 1 || !strings.Contains(out, "only root and tend's own user") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestControlSurvivesGarbage(t *testing.T) {
	needRoot(t)
	c := startControlled(t, twoServices)
	c.waitState(t, "web", "running")
	before := c.status(t)
	rng := rand.New(rand.NewSource(1))
	var mu sync.Mutex
	// Signals only ever go to a service that does not exist, so a random
	// body that happens to be valid cannot stop a real one.
	paths := []string{"/v1/services", "/v1/services/web", "/v1/services/nope/signal", "/v1/services/nope/stop", "/v1/health", "/v1/reload/x"}
	requests := make([][]byte, 10000)
	for i := range requests {
		switch i % 3 {
		case 0: // random bytes
			b := make([]byte, rng.Intn(3000))
			rng.Read(b)
			requests[i] = b
		case 1: // random JSON to a real endpoint
			body := randomJSON(rng, 3)
			requests[i] = []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", paths[rng.Intn(len(paths))], len(body), body))
		default: // a request head cut or mangled at a random place
			full := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: tend\r\nContent-Length: %d\r\n\r\n", paths[rng.Intn(len(paths))], rng.Intn(100))
			requests[i] = []byte(full[:rng.Intn(len(full)+1)])
		}
	}
	answered, five := 0, 0
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < len(requests); i += 8 {
				conn, err := net.Dial("unix", c.socket)
				if err != nil {
					t.Errorf("dial %d: %v", i, err)
					return
				}
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				conn.Write(requests[i])
				conn.(*net.UnixConn).CloseWrite()
				buf := make([]byte, 4096)
				n, _ := conn.Read(buf)
				conn.Close()
				mu.Lock()
				if n > 0 {
					answered++
					if strings.HasPrefix(string(buf[:n]), "HTTP/1.1 5") && !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 505") && !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 503") {
						five++
					}
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	t.Logf("%d of %d garbage requests answered, %d with a 5xx", answered, len(requests), five)
	if five > 0 {
		t.Fatalf("%d answers were server errors", five)
	}
	after := c.status(t)
	for _, name := range []string{"web", "worker"} {
		if after[name]["pid"] != before[name]["pid"] || after[name]["state"] != "running" {
			t.Fatalf("%s changed: %v → %v", name, before[name], after[name])
		}
	}
	if out, _, code := c.ctl(t, "health"); code != 0 {
		t.Fatalf("health after the garbage: %s", out)
	}
}

// randomJSON makes a random JSON value up to depth levels deep.
func randomJSON(rng *rand.Rand, depth int) string {
	switch k := rng.Intn(7); {
	case depth == 0 || k == 0:
		return fmt.Sprint(rng.Intn(100) - 50)
	case k == 1:
		return `"` + []string{"USR1", "TERM", "KILL", "", "SIGWINCH", "\\u0000", "99"}[rng.Intn(7)] + `"`
	case k == 2:
		return []string{"true", "null", "1e999", "-0", `"\ud800"`}[rng.Intn(5)]
	case k == 3:
		var parts []string
		for i := rng.Intn(4); i > 0; i-- {
			parts = append(parts, randomJSON(rng, depth-1))
		}
		return "[" + strings.Join(parts, ",") + "]"
	default:
		keys := []string{"signal", "name", "x", ""}
		var parts []string
		for i := rng.Intn(3); i > 0; i-- {
			parts = append(parts, fmt.Sprintf("%q:%s", keys[rng.Intn(len(keys))], randomJSON(rng, depth-1)))
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
}
