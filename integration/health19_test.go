package integration

// Issue 19, health_listen: GET /livez and /readyz over TCP for a kubelet's
// httpGet probes and load balancers, with the metrics listener's slots,
// so that idle clients cannot keep a probe from its 1 s.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// probeTimeout is a kubelet's default timeoutSeconds.
const probeTimeout = time.Second

// probeOnce sends method path to addr on a connection of its own, as a
// kubelet's httpGet does, and reads the answer within 5 s.
func probeOnce(addr, method, path string) (code int, body string, hdr http.Header, took time.Duration, err error) {
	start := time.Now()
	defer func() { took = time.Since(start) }()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, "", nil, 0, err
	}
	defer conn.Close()
	conn.SetDeadline(start.Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kube-probe/1.31\r\nAccept: */*\r\nConnection: close\r\n\r\n", method, path, addr); err != nil {
		return 0, "", nil, 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return 0, "", nil, 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), resp.Header, 0, err
}

// waitProbe probes path until its answer has code and want, within limit.
func waitProbe(t *testing.T, s *started, addr, path string, code int, want string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		c, body, _, _, err := probeOnce(addr, "GET", path)
		if err == nil && c == code && strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %q %v; want %d with %q within %v\nstderr:\n%s", path, c, body, err, code, want, limit, tail(s.errb.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog waits until tend's stderr has want.
func waitLog(t *testing.T, s *started, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(s.errb.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in tend's log within %v\nstderr:\n%s", want, limit, s.errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// timeProbes probes /livez and /readyz every gap for d, and fails the test
// on an answer that is not a 200 within probeTimeout; it returns each one's
// time.
func timeProbes(t *testing.T, addr, with string, d, gap time.Duration) []time.Duration {
	t.Helper()
	var took []time.Duration
	for start := time.Now(); len(took) == 0 || time.Since(start) < d; {
		for _, path := range []string{"/livez", "/readyz"} {
			code, body, _, tk, err := probeOnce(addr, "GET", path)
			if err != nil || code != 200 || body != "ok\n" {
				t.Fatalf("GET %s with %s: %d %q %v after %v", path, with, code, body, err, tk)
			}
			if tk > probeTimeout {
				t.Fatalf("GET %s with %s took %v; a kubelet gives up after %v", path, with, tk, probeTimeout)
			}
			took = append(took, tk)
		}
		time.Sleep(gap)
	}
	return took
}

// idleFlood keeps n clients connected to addr that send nothing; each one
// that tend closes dials again at once. The function it returns ends them
// and says how many connections they made.
func idleFlood(addr string, n int) (end func() int64) {
	stop := make(chan struct{})
	var (
		wg    sync.WaitGroup
		dials atomic.Int64
		once  sync.Once
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil { // the backlog is full: again soon, as a flood would
					pause := time.NewTimer(10 * time.Millisecond)
					select {
					case <-stop:
						pause.Stop()
						return
					case <-pause.C:
					}
					continue
				}
				dials.Add(1)
				ended := make(chan struct{})
				go func() {
					select {
					case <-stop:
						c.SetReadDeadline(time.Now())
					case <-ended:
					}
				}()
				c.Read(buf) // until tend closes it
				close(ended)
				c.Close()
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	return func() int64 { once.Do(func() { close(stop); wg.Wait() }); return dials.Load() }
}

// TestHealthListen: tend as PID 1 with health_listen and metrics_listen on
// one address. /livez is 200 from the start; /readyz is 503 with the
// reasons until db's readiness check passes and web runs; both answer
// within a kubelet's 1 s while 100 idle clients are connected, and while
// 100 reconnect as soon as they are closed; when an essential service
// gives up, /livez is 503 until tend exits with its status.
func TestHealthListen(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	goFile, failFile := filepath.Join(dir, "go"), filepath.Join(dir, "fail")
	cfg := writeConfig(t, fmt.Sprintf(`control_socket = ""
health_listen = %[1]q
metrics_listen = %[1]q

[services.db]
command = ["sh", "-c", "exec sleep 300"]
ready = { file = %[2]q, interval = "50ms" }

[services.web]
command = ["sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"]
depends_on = ["db"]
stop_timeout = "2s"

[services.core]
command = ["sh", "-c", "while [ ! -e %[3]s ]; do sleep 0.05; done; exit 3"]
essential = true
max_restarts = 0
`, addr, goFile, failFile))
	s := run{pid1: true, bin: binUnderTest(), args: []string{"--config", cfg}}.start(t)
	waitLog(t, s, "health_listen and metrics_listen: serving http://"+addr+"/livez", 10*time.Second)
	pid := s.tendPid(t, true)

	// Live from the start; not ready, with the reasons, in text and JSON.
	if code, body, _, _, err := probeOnce(addr, "GET", "/livez"); err != nil || code != 200 || body != "ok\n" {
		t.Fatalf("GET /livez at the start: %d %q %v", code, body, err)
	}
	body := waitProbe(t, s, addr, "/readyz", 503, "web is idle, waiting for db to be ready", 10*time.Second)
	if body != "not ready:\n  db is not ready\n  web is idle, waiting for db to be ready\n" {
		t.Fatalf("GET /readyz before db is ready: %q", body)
	}
	code, body, hdr, _, err := probeOnce(addr, "GET", "/readyz?format=json")
	var verdict struct {
		Ready   *bool    `json:"ready"`
		Reasons []string `json:"reasons"`
	}
	if err != nil || code != 503 || hdr.Get("Content-Type") != "application/json" || json.Unmarshal([]byte(body), &verdict) != nil ||
		verdict.Ready == nil || *verdict.Ready || len(verdict.Reasons) != 2 {
		t.Fatalf("GET /readyz?format=json before db is ready: %d %v %q %v", code, hdr, body, err)
	}

	// db ready, web started: ready.
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitProbe(t, s, addr, "/readyz", 200, "ok\n", 10*time.Second)
	code, body, hdr, _, err = probeOnce(addr, "HEAD", "/readyz")
	if err != nil || code != 200 || body != "" || hdr.Get("Content-Length") != "3" {
		t.Fatalf("HEAD /readyz: %d %q %v %v", code, body, hdr, err)
	}
	for _, c := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/metrics", 200, `tend_service_ready{service="web"} 1`},
		{"GET", "/v1/services", 404, "only /livez, /readyz and /metrics are served here"},
		{"POST", "/livez", 405, "needs GET or HEAD"},
	} {
		if code, body, _, _, err := probeOnce(addr, c.method, c.path); err != nil || code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %q %v; want %d with %q", c.method, c.path, code, body, err, c.code, c.want)
		}
	}

	// 100 connections that never send a byte, held open for 3 s (past
	// every deadline tend has for them), while probes come every 100 ms.
	const idle = 100
	conns := make([]net.Conn, 0, idle)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range idle {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		conns = append(conns, c)
	}
	took := timeProbes(t, addr, fmt.Sprintf("%d idle clients connected", idle), 3*time.Second, 100*time.Millisecond)
	t.Logf("with %d idle clients connected: %d probes, the first in %v, the slowest in %v; tend has %d fds", idle, len(took), took[0], slowest(took), fdCount(t, pid))
	for _, c := range conns {
		c.Close()
	}
	// 100 idle clients that connect again as soon as tend closes them.
	end := idleFlood(addr, idle)
	took = timeProbes(t, addr, fmt.Sprintf("%d idle clients reconnecting", idle), 3*time.Second, 100*time.Millisecond)
	dials := end()
	t.Logf("with %d idle clients reconnecting (%d connections in all): %d probes, the slowest in %v", idle, dials, len(took), slowest(took))

	// The essential service gives up: tend shuts down, and is not live
	// while it does (web holds the shutdown up for its stop_timeout).
	if err := os.WriteFile(failFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	body = waitProbe(t, s, addr, "/livez", 503, "essential service core is max-restarts-reached (exit code 3), so tend is shutting down", 10*time.Second)
	t.Logf("GET /livez after core gave up: %q", body)
	if code, body, _, _, err := probeOnce(addr, "GET", "/readyz"); err != nil || code != 503 || !strings.Contains(body, "tend is shutting down (essential service gave up)") {
		t.Errorf("GET /readyz while tend shuts down: %d %q %v", code, body, err)
	}
	if res := s.wait(t, 20*time.Second); res.code != 3 {
		t.Fatalf("tend exited %d, want 3 (the essential service's status)\n%s", res.code, tail(res.stderr))
	}
}

// A health_listen tend cannot bind is a warning naming the key, and tend
// runs without it (as with metrics_listen); an address that is not one is
// a config error at its file, line and key, for tend check and for tend.
func TestHealthListenRefused(t *testing.T) {
	needRoot(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	sock := filepath.Join(t.TempDir(), "tend.sock")
	cfg := writeConfig(t, fmt.Sprintf("control_socket = %q\nhealth_listen = %q\n[services.web]\ncommand = [\"sleep\", \"300\"]\n", sock, busy.Addr().String()))
	s := run{args: []string{"--config", cfg}}.start(t)
	waitLog(t, s, "control API on", 10*time.Second)
	log := s.errb.String()
	want := "health_listen " + busy.Addr().String() + ": listen tcp " + busy.Addr().String() + ": bind: address already in use; /livez and /readyz are not served"
	if !strings.Contains(log, want) || !strings.Contains(log, "set health_listen to another port") {
		t.Fatalf("no warning %q in\n%s", want, log)
	}
	// tend runs on: the control socket answers.
	if res := (run{env: []string{"TEND_CONFIG=" + cfg}, args: []string{"ctl", "status"}}).do(t); res.code != 0 {
		t.Fatalf("tend ctl status: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	s.cmd.Process.Signal(os.Interrupt)
	s.wait(t, 20*time.Second)

	bad := writeConfig(t, "log_level = \"info\"\nhealth_listen = \"0.0.0.0\"\n[services.web]\ncommand = \"true\"\n")
	wantErr := bad + `:2: health_listen: "0.0.0.0" is not host:port (for example "127.0.0.1:9100")`
	if res := (run{args: []string{"check", bad}}).do(t); res.code != 1 || !strings.Contains(res.stdout+res.stderr, wantErr) {
		t.Errorf("tend check: %d %q%q; want 1 and %q", res.code, res.stdout, res.stderr, wantErr)
	}
	if res := (run{args: []string{"--config", bad}}).do(t); res.code != 2 || !strings.Contains(res.stderr, wantErr) {
		t.Errorf("tend --config: %d %q; want 2 and %q", res.code, res.stderr, wantErr)
	}
}
