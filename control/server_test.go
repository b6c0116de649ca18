package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
			h := Handler(&fakeSupervisor{}, nil, quietLog())
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, strings.NewReader(c.body)))
			if rec.Code != c.want || !strings.Contains(rec.Body.String(), c.contains) {
				t.Fatalf("%d %s, want %d containing %q", rec.Code, rec.Body, c.want, c.contains)
			}
			if !json.Valid(rec.Body.Bytes()) || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("not a JSON answer: %q", rec.Body)
			}
		})
	}
}

func TestHealthy(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler(&fakeSupervisor{healthy: true}, nil, quietLog()).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/health", nil))
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestOversizedBody(t *testing.T) {
	body := `{"signal":"` + strings.Repeat("A", maxBody) + `"}`
	rec := httptest.NewRecorder()
	Handler(&fakeSupervisor{}, nil, quietLog()).ServeHTTP(rec, httptest.NewRequest("POST", "/v1/services/web/signal", strings.NewReader(body)))
	if rec.Code != 400 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// FuzzHandler feeds raw bytes as an HTTP request: whatever parses as one
// must get a JSON answer below 500, and nothing may panic.
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
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // net/http answers 400 itself before tend sees it
		}
		rec := httptest.NewRecorder()
		Handler(&fakeSupervisor{reloadOK: true, healthy: true}, nil, quietLog()).ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%d for %q: %s", rec.Code, raw, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("not JSON for %q: %q", raw, rec.Body)
		}
	})
}
