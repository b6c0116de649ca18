package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/supervise"
)

// fakeSupervisor knows one service, "web", running as pid 42.
type fakeSupervisor struct {
	ops      []string
	reloadOK bool
	healthy  bool
}

func (f *fakeSupervisor) Statuses() ([]supervise.ServiceStatus, error) {
	return []supervise.ServiceStatus{{Name: "web", State: supervise.Running, PID: 42, Ready: true, Healthy: true}}, nil
}

func (f *fakeSupervisor) Status(name string) (supervise.ServiceStatus, error) {
	if name != "web" {
		return supervise.ServiceStatus{}, fmt.Errorf("%w: %q", supervise.ErrUnknownService, name)
	}
	st, _ := f.Statuses()
	return st[0], nil
}

func (f *fakeSupervisor) Operate(name string, cmd supervise.Command) error {
	if name != "web" {
		return fmt.Errorf("%w: %q", supervise.ErrUnknownService, name)
	}
	if cmd == supervise.CmdStart {
		return fmt.Errorf("%w: web is running", supervise.ErrConflict)
	}
	f.ops = append(f.ops, string(cmd))
	return nil
}

func (f *fakeSupervisor) SignalService(name string, sig unix.Signal) error {
	if name != "web" {
		return fmt.Errorf("%w: %q", supervise.ErrUnknownService, name)
	}
	f.ops = append(f.ops, fmt.Sprint("signal ", int(sig)))
	return nil
}

func (f *fakeSupervisor) Reload() error {
	if !f.reloadOK {
		return errors.New("tend.toml:3: services.x.restart: bad\ntend.toml:4: services.x.colour: unknown key")
	}
	return nil
}

func (f *fakeSupervisor) Shutdown(string) error { f.ops = append(f.ops, "shutdown"); return nil }

func (f *fakeSupervisor) Health() (bool, []string, error) {
	if f.healthy {
		return true, nil, nil
	}
	return false, []string{"web is not ready"}, nil
}

func quietLog() *logrus.Logger {
	l := logrus.New()
	l.Out = io.Discard
	return l
}

func TestAPI(t *testing.T) {
	cases := []struct {
		method, path, body string
		want               int
		contains           string
	}{
		{"GET", "/v1/services", "", 200, `"name": "web"`},
		{"GET", "/v1/services/web", "", 200, `"pid": 42`},
		{"GET", "/v1/services/nope", "", 404, `no such service`},
		{"POST", "/v1/services", "", 405, `needs GET`},
		{"POST", "/v1/services/web/stop", "", 200, `"state": "running"`},
		{"POST", "/v1/services/web/restart", "", 200, `"name": "web"`},
		{"POST", "/v1/services/web/start", "", 409, `running`},
		{"GET", "/v1/services/web/stop", "", 405, `needs POST`},
		{"POST", "/v1/services/nope/stop", "", 404, `no such service`},
		{"POST", "/v1/services/web/explode", "", 404, `no such action`},
		{"POST", "/v1/services/web/signal", `{"signal":"USR1"}`, 200, `SIGUSR1`},
		{"POST", "/v1/services/web/signal", `{"signal":15}`, 200, `SIGTERM`},
		{"POST", "/v1/services/web/signal", `{"signal":"WHAT"}`, 400, `unknown signal`},
		{"POST", "/v1/services/web/signal", `{"signal":"USR1"`, 400, `invalid JSON`},
		{"POST", "/v1/services/web/signal", `{"sig":"USR1"}`, 400, `unknown field`},
		{"POST", "/v1/services/web/signal", ``, 400, `empty body`},
		{"POST", "/v1/services/web/signal", `{"signal":"USR1"} {}`, 400, `more than one`},
		{"POST", "/v1/services/web/signal", `[1,2]`, 400, `invalid JSON`},
		{"POST", "/v1/services/nope/signal", `{"signal":"USR1"}`, 404, `no such service`},
		{"POST", "/v1/reload", "", 422, `services.x.colour: unknown key`},
		{"POST", "/v1/shutdown", "", 202, `shutting down`},
		{"GET", "/v1/health", "", 503, `web is not ready`},
		{"POST", "/v1/poweroff", "", 409, `VM mode`},
		{"GET", "/v2/services", "", 404, `no such resource`},
		{"GET", "/", "", 404, `no such resource`},
		{"DELETE", "/v1/reload", "", 405, `needs POST`},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: tend\r\nContent-Length: %d\r\n\r\n%s", c.method, c.path, len(c.body), c.body)
			code, body := roundTrip(t, &fakeSupervisor{}, raw)
			if code != c.want || !strings.Contains(body, c.contains) {
				t.Fatalf("%d %s, want %d containing %q", code, body, c.want, c.contains)
			}
		})
	}
}

// roundTrip parses raw as the server does, answers it, and parses the
// answer as tend ctl does.
func roundTrip(t *testing.T, sup Supervisor, raw string) (int, string) {
	t.Helper()
	var resp Response
	req, err := readRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			return 0, err.Error()
		}
		resp = errorResponse(he.code, he.msg)
	} else {
		resp = NewHandler(sup, nil, quietLog()).Handle(req)
	}
	var out bytes.Buffer
	if err := writeResponse(&out, resp); err != nil {
		t.Fatal(err)
	}
	wire := out.String()
	code, body, err := readResponse(bufio.NewReader(&out))
	if err != nil {
		t.Fatalf("unreadable answer %q: %v", wire, err)
	}
	if !json.Valid(body) || !strings.Contains(wire, "Content-Type: application/json") {
		t.Fatalf("not a JSON answer: %q", wire)
	}
	return code, string(body)
}

func TestHealthy(t *testing.T) {
	if code, body := roundTrip(t, &fakeSupervisor{healthy: true}, "GET /v1/health HTTP/1.1\r\n\r\n"); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
}

func TestMalformedRequests(t *testing.T) {
	big := `{"signal":"` + strings.Repeat("A", maxBody) + `"}`
	cases := []struct {
		raw  string
		want int
	}{
		{fmt.Sprintf("POST /v1/services/web/signal HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", len(big), big), 413},
		{"GET /v1/services HTTP/2.0\r\n\r\n", 505},
		{"GET /v1/services\r\n\r\n", 400},
		{"get /v1/services HTTP/1.1\r\n\r\n", 400},
		{"GET /v1/services HTTP/1.1\r\nBad Header\r\n\r\n", 400},
		{"GET /v1/services HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
		{"GET /v1/services HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"POST /v1/reload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411},
		{"POST /v1/services/web/signal HTTP/1.1\r\nContent-Length: 50\r\n\r\n{}", 400},
		{"GET /v1/services/%zz HTTP/1.1\r\n\r\n", 400},
		{"GET /v1/services HTTP/1.1\r\nX: " + strings.Repeat("a", maxHeader) + "\r\n\r\n", 431},
		{"GET /v1/services HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", 100) + "\r\n", 431},
		{"GET /v1/ser\x00vices HTTP/1.1\r\n\r\n", 400},
		{"GET http://tend/v1/services/web?x=1 HTTP/1.1\r\n\r\n", 200},
		{"GET /v1/services/web%2Fstop HTTP/1.1\r\n\r\n", 404},
		{"GET /v1/services", 400},
	}
	for _, c := range cases {
		if code, body := roundTrip(t, &fakeSupervisor{}, c.raw); code != c.want {
			t.Errorf("%.60q: %d %s, want %d", c.raw, code, body, c.want)
		}
	}
}

// FuzzHandler feeds raw bytes to the request parser and the handler:
// every answer must be JSON and below 500 (but 505), and nothing may panic.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"GET /v1/services HTTP/1.1\r\nHost: tend\r\n\r\n",
		"POST /v1/services/web/signal HTTP/1.1\r\nHost: tend\r\nContent-Length: 17\r\n\r\n{\"signal\":\"USR1\"}",
		"POST /v1/reload HTTP/1.1\r\nHost: tend\r\n\r\n",
		"GET /v1/health HTTP/1.1\r\nHost: tend\r\n\r\n",
		"POST /v1/services/web/restart HTTP/1.1\r\nHost: tend\r\n\r\n",
		"GET /v1/services/%00 HTTP/1.1\r\nHost: tend\r\n\r\n",
		"PUT //v1//services/// HTTP/1.1\r\nHost: tend\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		code, body := roundTrip(t, &fakeSupervisor{reloadOK: true, healthy: true}, string(raw))
		if code == 0 {
			return // the request ended before its head did: no answer is owed
		}
		if code >= 500 && code != 505 {
			t.Fatalf("%d for %q: %s", code, raw, body)
		}
	})
}

func TestServeKeepsALiveSocket(t *testing.T) {
	path := t.TempDir() + "/tend.sock"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := NewHandler(&fakeSupervisor{}, nil, quietLog())
	if err := Serve(ctx, path, h, quietLog()); err != nil {
		t.Fatal(err)
	}
	if err := Serve(ctx, path, h, quietLog()); err == nil || !strings.Contains(err.Error(), "another tend") {
		t.Fatalf("a second tend took over a live socket: %v", err)
	}
	// A stale socket file (nobody listening) is replaced.
	stale := t.TempDir() + "/stale.sock"
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if err := Serve(ctx, stale, h, quietLog()); err != nil {
		t.Fatalf("a stale socket was not replaced: %v", err)
	}
	c := &client{socket: stale, out: io.Discard, errw: io.Discard}
	if code, _, err := c.do("GET", "/v1/services", nil); err != nil || code != 200 {
		t.Fatalf("after replacing the stale socket: %d %v", code, err)
	}
}
