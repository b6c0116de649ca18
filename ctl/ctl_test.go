package ctl

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/api"
	"github.com/tend-init/tend/api/apitest"
	"github.com/tend-init/tend/control"
	"github.com/tend-init/tend/httpwire"
	"github.com/tend-init/tend/supervise"
)

// serveSocket serves sup's API on a fresh control socket for the length
// of the test, and checks that it leaks nothing.
func serveSocket(t *testing.T, sup api.Supervisor) string {
	t.Helper()
	apitest.NoLeaks(t)
	path := t.TempDir() + "/tend.sock"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := control.Serve(ctx, path, api.NewHandler(sup, nil, apitest.QuietLog()), apitest.QuietLog()); err != nil {
		t.Fatal(err)
	}
	return path
}

// downSupervisor refuses everything as a supervisor that is going away.
type downSupervisor struct{ apitest.Supervisor }

var errDown = errors.New("the supervisor is shutting down")

func (downSupervisor) Statuses() ([]supervise.ServiceStatus, error) { return nil, errDown }
func (downSupervisor) Status(string) (supervise.ServiceStatus, error) {
	return supervise.ServiceStatus{}, errDown
}
func (downSupervisor) Health() (bool, []string, error)                 { return false, nil, errDown }
func (downSupervisor) SignalService(string, unix.Signal) error         { return errDown }
func (downSupervisor) Reopen(string) ([]supervise.ReopenedFile, error) { return nil, errDown }

func TestCLIShowsWhyTendRefused(t *testing.T) {
	cases := []struct {
		name        string
		sup         api.Supervisor
		args        []string
		code        int
		out, errw   string // what stdout and stderr must contain
		notOut      string // what stdout must not contain ("" for no check)
		emptyStdout bool
	}{
		{"status while tend goes down", &downSupervisor{}, []string{"status"}, 1, "", "503 Service Unavailable: the supervisor is shutting down", "", true},
		{"status of one while tend goes down", &downSupervisor{}, []string{"status", "web"}, 1, "", "the supervisor is shutting down", "", true},
		{"status --json while tend goes down", &downSupervisor{}, []string{"status", "--json"}, 1, `"error": "the supervisor is shutting down"`, "503 Service Unavailable", "", false},
		{"health while tend goes down", &downSupervisor{}, []string{"health"}, 1, "", "503 Service Unavailable: the supervisor is shutting down", "unhealthy", true},
		{"signal while tend goes down", &downSupervisor{}, []string{"signal", "web", "USR1"}, 1, "", "the supervisor is shutting down", "", true},
		{"unhealthy", &apitest.Supervisor{}, []string{"health"}, 1, "unhealthy:\n  web is not ready\n", "", "", false},
		{"healthy", &apitest.Supervisor{Healthy: true}, []string{"health"}, 0, "healthy\n", "", "unhealthy", false},
		{"unknown service", &apitest.Supervisor{}, []string{"status", "nope"}, 1, "", `tend ctl: no such service`, "", true},
		{"invalid reload", &apitest.Supervisor{}, []string{"reload"}, 1, "", "the config is invalid; the running config stays in force\n  tend.toml:3: services.x.restart: bad\n  tend.toml:4: services.x.colour: unknown key\n", "", true},
		{"status", &apitest.Supervisor{}, []string{"status"}, 0, "web", "", "", false},
		{"reopen", &apitest.Supervisor{}, []string{"reopen"}, 0, "web: reopened /var/log/web.log\n", "", "", false},
		{"reopen one", &apitest.Supervisor{}, []string{"reopen", "web"}, 0, "web: reopened /var/log/web.log\n", "", "", false},
		{"reopen unknown", &apitest.Supervisor{}, []string{"reopen", "nope"}, 1, "", "no such service", "", true},
		{"reopen while tend goes down", &downSupervisor{}, []string{"reopen"}, 1, "", "the supervisor is shutting down", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := serveSocket(t, c.sup)
			var out, errw strings.Builder
			code := Main(append([]string{"--socket", path}, c.args...), &out, &errw)
			if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errw.String(), c.errw) ||
				(c.notOut != "" && strings.Contains(out.String(), c.notOut)) || (c.emptyStdout && out.Len() != 0) {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errw.String())
			}
		})
	}
}

func TestExplainAnythingButJSON(t *testing.T) {
	cases := []struct {
		code int
		body string
		want string
	}{
		{502, "oops!", `tend ctl: tend answered 502 Status: "oops!"` + "\n"},
		{503, "", "tend ctl: tend answered 503 Service Unavailable with no body\n"},
		{500, `{"other": 1}`, `tend ctl: tend answered 500 Internal Server Error: "{\"other\": 1}"` + "\n"},
		{404, `{"error": "no such resource: /x"}`, "tend ctl: no such resource: /x\n"},
		{503, `{"healthy": false, "reasons": ["a is down"]}`, "tend ctl: tend answered 503 Service Unavailable:\n  a is down\n"},
		{400, strings.Repeat("x", 300), `tend ctl: tend answered 400 Bad Request: "` + strings.Repeat("x", 200) + `…"` + "\n"},
	}
	for _, c := range cases {
		var errw strings.Builder
		(&client{errw: &errw}).explain(c.code, []byte(c.body))
		if errw.String() != c.want {
			t.Errorf("%d %q: %q, want %q", c.code, c.body, errw.String(), c.want)
		}
	}
}

// TestCLISendsAgainWhatTendDidNotTake: a connection that tend closed
// before a byte of an answer (it made room for others) is tried again.
func TestCLISendsAgainWhatTendDidNotTake(t *testing.T) {
	apitest.NoLeaks(t)
	path := t.TempDir() + "/tend.sock"
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cases := []struct {
		name   string
		closes int // connections closed without a word before one is answered
		code   int
		errw   string
	}{
		{"once", 1, 0, ""},
		{"three times", 3, 0, ""},
		{"every time", 4, 1, "tend closed the connection without an answer"},
	}
	for _, c := range cases {
		served := make(chan int, 1)
		go func() {
			n := 0
			defer func() { served <- n }()
			for ; n <= c.closes; n++ {
				conn, err := l.AcceptUnix()
				if err != nil {
					return
				}
				if n < c.closes {
					conn.Close()
					continue
				}
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := httpwire.ReadRequest(bufio.NewReader(conn), nil); err == nil {
					httpwire.WriteResponse(conn, httpwire.Response{Code: 200, Body: map[string]any{"services": []any{}}})
				}
				conn.Close()
			}
		}()
		var out, errw strings.Builder
		code := Main([]string{"--socket", path, "status"}, &out, &errw)
		if c.code == 1 {
			l.SetDeadline(time.Now()) // the server side waits for a fifth try that never comes
		}
		n := <-served
		l.SetDeadline(time.Time{})
		if code != c.code || !strings.Contains(errw.String(), c.errw) || n < min(c.closes, 4) {
			t.Errorf("%s: exit %d after %d connections\n%s%s", c.name, code, n, out.String(), errw.String())
		}
	}
}
