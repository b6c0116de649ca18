package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// freePort finds a TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// stampsOf reads "name time" lines that services and main programs append
// when they start.
func stampsOf(t *testing.T, file string) map[string]float64 {
	t.Helper()
	b, _ := os.ReadFile(file)
	stamps := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			stamps[f[0]], _ = strconv.ParseFloat(f[1], 64)
		}
	}
	return stamps
}

// stamp is a shell snippet that records NAME's start in FILE.
func stamp(name, file string) string {
	return fmt.Sprintf("echo %s $(date +%%s.%%N) >> %s", name, file)
}

func TestReadinessGatesDependantsAndMain(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	stamps := filepath.Join(dir, "stamps")
	port := freePort(t)
	flag := filepath.Join(dir, "flag")
	cases := []struct {
		kind  string
		dep   string // the dependency's command (sh -c)
		ready string // its [ready] table
	}{
		{"tcp", fmt.Sprintf("%s; exec %s listen 127.0.0.1:%d 2s", stamp("dep", stamps), progBin, port), fmt.Sprintf(`tcp = "127.0.0.1:%d"`, port)},
		{"http", fmt.Sprintf("%s; exec %s http 127.0.0.1:%d 2s", stamp("dep", stamps), progBin, port), fmt.Sprintf(`http = "http://127.0.0.1:%d/healthz"
interval = "100ms"`, port)},
		{"file", fmt.Sprintf("%s; sleep 2; touch %s; sleep 30", stamp("dep", stamps), flag), fmt.Sprintf(`file = %q`, flag)},
		{"exec", fmt.Sprintf("%s; sleep 2; touch %s; sleep 30", stamp("dep", stamps), flag), fmt.Sprintf(`exec = ["test", "-e", %q]
interval = "100ms"`, flag)},
		{"notify", fmt.Sprintf("%s; exec %s notify 2s", stamp("dep", stamps), progBin), `notify = true`},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			os.Remove(stamps)
			os.Remove(flag)
			cfg := writeConfig(t, fmt.Sprintf(`
[services.dep]
command = ["sh", "-c", %q]
[services.dep.ready]
%s
[services.app]
command = ["sh", "-c", %q]
depends_on = ["dep"]
`, c.dep, c.ready, stamp("app", stamps)+"; sleep 30"))
			// The main program waits for app's stamp, so that app is not
			// stopped before it wrote it.
			main := fmt.Sprintf("%s; i=0; until grep -q app %s || [ $i -gt 100 ]; do sleep 0.05; i=$((i+1)); done", stamp("main", stamps), stamps)
			res := run{pid1: true, args: []string{"--config", cfg, "--", "sh", "-c", main}}.do(t)
			if res.code != 0 {
				t.Fatalf("exit %d\n%s", res.code, res.stderr)
			}
			s := stampsOf(t, stamps)
			if s["dep"] == 0 || s["app"]-s["dep"] < 2 || s["main"]-s["dep"] < 2 {
				t.Fatalf("starts %v: app and main must wait the 2s until dep is ready\n%s", s, res.stderr)
			}
			if !strings.Contains(res.stderr, "ready: ") {
				t.Fatalf("no readiness logged:\n%s", res.stderr)
			}
			if c.kind == "notify" && !strings.Contains(res.stderr, "status: serving") {
				t.Fatalf("STATUS= not logged:\n%s", res.stderr)
			}
		})
	}
}

func TestReadyTimeoutNamesServices(t *testing.T) {
	needRoot(t)
	port := freePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`
ready_timeout = "1s"
[services.never-ready]
command = "sleep 30"
[services.never-ready.ready]
tcp = "127.0.0.1:%d"
interval = "100ms"
[services.fine]
command = "sleep 30"
`, port))
	res := run{pid1: true, args: []string{"--config", cfg, "--", "echo", "main ran"}}.do(t)
	if res.code != 1 || strings.Contains(res.stdout, "main ran") {
		t.Fatalf("exit %d, stdout %q; want 1 without running the main program", res.code, res.stdout)
	}
	if !strings.Contains(res.stderr, "not ready after ready_timeout") || !strings.Contains(res.stderr, "never-ready (running") || strings.Contains(res.stderr, "fine (") {
		t.Fatalf("the message must name never-ready and only it:\n%s", res.stderr)
	}
}

func TestServiceNotReadyInTimeIsRestarted(t *testing.T) {
	needRoot(t)
	port := freePort(t)
	cfg := writeConfig(t, fmt.Sprintf(`
ready_timeout = "500ms"
[services.slow]
command = "sh -c 'echo run; sleep 30'"
max_restarts = 1
backoff = { delay = "10ms" }
[services.slow.ready]
tcp = "127.0.0.1:%d"
interval = "100ms"
`, port))
	res := run{pid1: true, args: []string{"--config", cfg}}.do(t)
	// Each run is stopped as unclean at the timeout: two runs, then
	// max_restarts.
	if res.code != 1 || strings.Count(res.stdout, "slow | run") != 2 || !strings.Contains(res.stderr, "not ready within ready_timeout") {
		t.Fatalf("exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if tr := transitions(res.stderr); tr[len(tr)-1] != "slow:stopping→max-restarts-reached" {
		t.Fatalf("transitions %v", tr)
	}
}

func TestFailedOneshotBlocksDependant(t *testing.T) {
	needRoot(t)
	cfg := writeConfig(t, `
[services.migrate]
command = "sh -c 'exit 4'"
oneshot = true
[services.app]
command = "sh -c 'echo app ran'"
depends_on = ["migrate"]
[services.worker]
command = "sh -c 'echo worker ran'"
depends_on = ["app"]
`)
	res := run{pid1: true, args: []string{"--config", cfg}}.do(t)
	if res.code != 1 || strings.Contains(res.stdout, "ran") {
		t.Fatalf("exit %d, stdout %q", res.code, res.stdout)
	}
	for _, want := range []string{
		`ERROR app not started: dependency migrate is stopped (exit code 4)`,
		`ERROR worker not started: dependency app was not started`,
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("missing %s in:\n%s", want, res.stderr)
		}
	}
}

func TestHealthThresholdRestartsService(t *testing.T) {
	needRoot(t)
	flag := filepath.Join(t.TempDir(), "healthy")
	// Healthy for half a second after each start, then the file goes.
	cfg := writeConfig(t, fmt.Sprintf(`
[services.web]
command = ["sh", "-c", "echo run; touch %[1]s; sleep 0.5; rm -f %[1]s; sleep 30"]
max_restarts = 1
backoff = { delay = "10ms" }
[services.web.health]
file = %[1]q
interval = "200ms"
timeout = "100ms"
threshold = 3
`, flag))
	res := run{pid1: true, args: []string{"--config", cfg}}.do(t)
	if strings.Count(res.stdout, "web | run") != 2 || strings.Count(res.stderr, "health check failed 3 times in a row: stopping it") != 2 {
		t.Fatalf("exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "health check failed (1 of 3)") || !strings.Contains(res.stderr, "health check failed (2 of 3)") {
		t.Fatalf("each failure must be logged:\n%s", res.stderr)
	}
	// An unclean end: the restart policy applied, then max_restarts.
	if res.code != 1 {
		t.Fatalf("exit %d", res.code)
	}
}

func TestHangingExecCheckIsKilledAtTimeout(t *testing.T) {
	needRoot(t)
	pids := filepath.Join(t.TempDir(), "pids")
	// The check starts a grandchild in its group and hangs; each run must
	// be killed, group and all, at the 300ms timeout, and the next one must
	// not start before that.
	cfg := writeConfig(t, fmt.Sprintf(`
[services.svc]
command = "sleep 30"
[services.svc.health]
exec = ["sh", "-c", "sleep 100 & echo $! $$ $(date +%%s.%%N) >> %s; wait"]
interval = "100ms"
timeout = "300ms"
threshold = 100
`, pids))
	s := run{args: []string{"--config", cfg}}.start(t)
	time.Sleep(2500 * time.Millisecond)
	b, _ := os.ReadFile(pids)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 3 {
		t.Fatalf("only %d check runs in 2.5s: %q", len(lines), b)
	}
	var last float64
	for i, line := range lines {
		f := strings.Fields(line)
		at, _ := strconv.ParseFloat(f[2], 64)
		if i > 0 && at-last < 0.3 {
			t.Fatalf("a check started %.3fs after the previous one: they overlap\n%s", at-last, b)
		}
		last = at
		if i < len(lines)-1 {
			for _, p := range f[:2] {
				pid, _ := strconv.Atoi(p)
				if alive(pid) {
					t.Fatalf("process %d of an earlier check is still alive", pid)
				}
			}
		}
	}
	stopTend(t, s)
}

// stopTend stops a started tend and waits for it.
func stopTend(t *testing.T, s *started) {
	t.Helper()
	s.cmd.Process.Signal(os.Interrupt)
	s.wait(t, 15*time.Second)
}

// TestCISidecar runs ci.toml.example as it is: a real redis-server from
// Debian, fixtures loaded by a oneshot, then the main program.
func TestCISidecar(t *testing.T) {
	needRoot(t)
	for _, tool := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("needs %s (Debian packages redis-server, redis-tools); .ci/run installs them", tool)
			}
			t.Skip("needs " + tool)
		}
	}
	port := freePort(t)
	env := []string{fmt.Sprintf("REDIS_PORT=%d", port)}
	// Not PID 1, so that what is left behind can be seen after tend exits.
	main := fmt.Sprintf(`test "$(redis-cli -p %d get greeting)" = hello && exit 3`, port)
	res := run{env: env, args: []string{"--config", "../ci.toml.example", "--", "sh", "-c", main}}.do(t)
	if res.code != 3 {
		t.Fatalf("exit %d, want the main program's 3\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		conn.Close()
		t.Fatal("redis is still listening after tend exited")
	}
	if out, _ := exec.Command("pgrep", "-f", fmt.Sprintf("redis-server.*%d", port)).Output(); len(out) > 0 {
		t.Fatalf("redis-server processes left behind: %s", out)
	}
	// A failing main program's status comes through too.
	res = run{env: env, args: []string{"--config", "../ci.toml.example", "--", "sh", "-c", "exit 1"}}.do(t)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1", res.code)
	}
}
