package integration

// Issue 18, metrics_listen: four idle TCP connections held its four slots
// for about 12 s each, so a scrape waited behind them (11.4 s with 4 idle
// clients, past Prometheus' 10 s scrape_timeout). This test fails on
// 5fd2559 (run it with TEND_BIN_UNDER_TEST=<old tend>).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrapeTimeout is Prometheus' default scrape_timeout: a scrape that
// takes longer is a failed scrape.
const scrapeTimeout = 10 * time.Second

// scrapeOnce GETs /metrics from addr on a connection of its own, as a
// Prometheus scrape does, and gives up after scrapeTimeout.
func scrapeOnce(addr string) (code int, body string, took time.Duration, err error) {
	start := time.Now()
	defer func() { took = time.Since(start) }()
	conn, err := net.DialTimeout("tcp", addr, scrapeTimeout)
	if err != nil {
		return 0, "", 0, err
	}
	defer conn.Close()
	conn.SetDeadline(start.Add(scrapeTimeout))
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.1\r\nHost: "+addr+"\r\nAccept: text/plain\r\n\r\n"); err != nil {
		return 0, "", 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", 0, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b), 0, err
}

// startWithMetrics starts binUnderTest() as PID 1 with metrics_listen on
// a free port of 127.0.0.1 and one service, and returns once the port is
// open: tend opens it before it starts any service, and the service tells
// the test it runs through a FIFO (no polling of the port).
func startWithMetrics(t *testing.T) (addr string, s *started) {
	t.Helper()
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	up := filepath.Join(t.TempDir(), "up")
	if err := syscall.Mkfifo(up, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`control_socket = ""
metrics_listen = %q
[services.web]
command = ["sh", "-c", %q]
`, addr, "echo up > "+up+"; exec sleep 300"))
	s = run{pid1: true, bin: binUnderTest(), args: []string{"--config", cfg}}.start(t)
	opened := make(chan error, 1)
	go func() {
		f, err := os.Open(up) // until the service opens it to write
		if err == nil {
			io.Copy(io.Discard, f)
			f.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		if err != nil {
			t.Fatal(err)
		}
	case res := <-s.done:
		t.Fatalf("tend exited (%d) before its service started\n%s", res.code, tail(res.stderr))
	case <-time.After(10 * time.Second):
		// Let the reader go: a writer that opens and closes ends its open.
		if f, err := os.OpenFile(up, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		t.Fatalf("the service did not start within 10 s\n%s", tail(s.errb.String()))
	}
	return addr, s
}

// timeScrapes scrapes every gap for d and fails the test on a scrape that
// is not a 200 within limit; it returns each one's time.
func timeScrapes(t *testing.T, addr, with string, d, gap, limit time.Duration) []time.Duration {
	t.Helper()
	var took []time.Duration
	for start := time.Now(); len(took) == 0 || time.Since(start) < d; {
		code, body, tk, err := scrapeOnce(addr)
		t.Logf("scrape with %s: %d after %v", with, code, tk.Round(10*time.Microsecond))
		if err != nil || code != 200 || !strings.Contains(body, `tend_service_state{service="web",state="running"} 1`) {
			t.Fatalf("scrape with %s: %d %v after %v (Prometheus gives up after %v)\n%s", with, code, err, tk, scrapeTimeout, body)
		}
		if tk > limit {
			t.Fatalf("a scrape with %s took %v; want under %v", with, tk, limit)
		}
		took = append(took, tk)
		time.Sleep(gap)
	}
	return took
}

func slowest(took []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range took {
		m = max(m, d)
	}
	return m
}

func TestMetricsListenIdleClients(t *testing.T) {
	needRoot(t)
	const idle = 100
	addr, s := startWithMetrics(t)
	pid := s.tendPid(t, true)

	// Round 1: 100 connections that never send a byte, held open for 4 s
	// (past every deadline tend has for them) while a scrape comes every
	// 250 ms.
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
	took := timeScrapes(t, addr, fmt.Sprintf("%d idle clients connected", idle), 4*time.Second, 250*time.Millisecond, time.Second)
	t.Logf("with %d idle clients connected: %d scrapes, the first in %v, the slowest in %v; tend has %d fds", idle, len(took), took[0], slowest(took), fdCount(t, pid))

	// Round 2: 100 idle clients that connect again as soon as tend closes
	// them, for 4 s.
	endClients := idleFlood(addr, idle)
	defer endClients()
	took = timeScrapes(t, addr, fmt.Sprintf("%d idle clients reconnecting", idle), 4*time.Second, 250*time.Millisecond, time.Second)
	dials := endClients()
	t.Logf("with %d idle clients reconnecting (%d connections in all): %d scrapes, the slowest in %v", idle, dials, len(took), slowest(took))
}
