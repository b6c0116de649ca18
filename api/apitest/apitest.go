// Package apitest holds what the tests of the control API's packages (api,
// control, ctl) share: a fake supervisor, a quiet logger, a raw request on
// a socket, and a check that a test leaves no goroutine behind. It imports
// neither api nor control, so that their own tests may import it.
package apitest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/httpwire"
	"github.com/tend-init/tend/supervise"
)

// Supervisor is a fake supervisor that knows one service, "web", running
// as pid 42.
type Supervisor struct {
	ops      []string
	ReloadOK bool
	Healthy  bool
	NotLive  bool              // Live says no
	ReadyOK  bool              // Ready says yes
	ProbeErr error             // what Live and Ready fail with
	Events   *supervise.Events // made by the first SubscribeEvents if nil
	logs     *supervise.Logs
}

// LogsOf is the fake's log rings, for a test to add lines to.
func (f *Supervisor) LogsOf() *supervise.Logs {
	if f.logs == nil {
		f.logs = supervise.NewLogs(0)
	}
	return f.logs
}

func (f *Supervisor) Logs(name string, n int) ([]supervise.LogLine, error) {
	if name != "" && name != "web" {
		return nil, fmt.Errorf("%w: %q", supervise.ErrUnknownService, name)
	}
	return f.LogsOf().Recent(name, n), nil
}

func (f *Supervisor) FollowLogs(name string) (*supervise.Follower, error) {
	if name != "" && name != "web" {
		return nil, fmt.Errorf("%w: %q", supervise.ErrUnknownService, name)
	}
	return f.LogsOf().Follow(name), nil
}

func (f *Supervisor) SubscribeEvents() (<-chan supervise.Happening, func()) {
	if f.Events == nil {
		f.Events = supervise.NewEvents()
	}
	return f.Events.Subscribe()
}

func (f *Supervisor) Metrics() ([]byte, error) {
	return []byte("# TYPE tend_reloads_total counter\ntend_reloads_total 0\n"), nil
}

func (f *Supervisor) Statuses() ([]supervise.ServiceStatus, error) {
	return []supervise.ServiceStatus{{Name: "web", State: supervise.Running, PID: 42, Ready: true, Healthy: true}}, nil
}

func (f *Supervisor) Status(name string) (supervise.ServiceStatus, error) {
	if name != "web" {
		return supervise.ServiceStatus{}, fmt.Errorf("%w: %q", supervise.ErrUnknownService, name)
	}
	st, _ := f.Statuses()
	return st[0], nil
}

func (f *Supervisor) Operate(name string, cmd supervise.Command) error {
	if name != "web" {
		return fmt.Errorf("%w: %q", supervise.ErrUnknownService, name)
	}
	if cmd == supervise.CmdStart {
		return fmt.Errorf("%w: web is running", supervise.ErrConflict)
	}
	f.ops = append(f.ops, string(cmd))
	return nil
}

func (f *Supervisor) SignalService(name string, sig unix.Signal) error {
	if name != "web" {
		return fmt.Errorf("%w: %q", supervise.ErrUnknownService, name)
	}
	f.ops = append(f.ops, fmt.Sprint("signal ", int(sig)))
	return nil
}

func (f *Supervisor) Reopen(name string) ([]supervise.ReopenedFile, error) {
	if name != "" && name != "web" {
		return nil, fmt.Errorf("%w: %q", supervise.ErrUnknownService, name)
	}
	f.ops = append(f.ops, "reopen "+name)
	return []supervise.ReopenedFile{{Service: "web", File: "/var/log/web.log", Open: true}}, nil
}

func (f *Supervisor) Reload() (supervise.ReloadSummary, error) {
	if !f.ReloadOK {
		return supervise.ReloadSummary{}, errors.New("tend.toml:3: services.x.restart: bad\ntend.toml:4: services.x.colour: unknown key")
	}
	return supervise.ReloadSummary{Restarted: []string{"web"}, Unchanged: 1, Files: 1}, nil
}

func (f *Supervisor) Shutdown(string) error { f.ops = append(f.ops, "shutdown"); return nil }

func (f *Supervisor) Health() (bool, []string, error) {
	if f.Healthy {
		return true, nil, nil
	}
	return false, []string{"web is not ready"}, nil
}

func (f *Supervisor) Live() (bool, []string, error) {
	switch {
	case f.ProbeErr != nil:
		return false, nil, f.ProbeErr
	case f.NotLive:
		return false, []string{"essential service web is max-restarts-reached (exit code 1), so tend is shutting down"}, nil
	}
	return true, nil, nil
}

func (f *Supervisor) Ready() (bool, []string, error) {
	switch {
	case f.ProbeErr != nil:
		return false, nil, f.ProbeErr
	case !f.ReadyOK:
		return false, []string{"web is not ready", "db is crash-loop-backoff, last exit code 1"}, nil
	}
	return true, nil, nil
}

// QuietLog is a logger that writes nowhere.
func QuietLog() *logrus.Logger {
	l := logrus.New()
	l.Out = io.Discard
	return l
}

// NoLeaks fails t unless, once t's later cleanups (the server's cancel)
// have run, every goroutine that was not there when it was called has
// ended. Goroutines are told apart by their ids, so a goroutine of an
// earlier test that ends meanwhile cannot hide a new one.
func NoLeaks(t *testing.T) {
	base := goroutines()
	t.Cleanup(func() {
		if err := settle(base, 5*time.Second); err != nil {
			t.Error(err)
		}
	})
}

// goroutines maps the id of every goroutine to its stack.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	all := map[string]string{}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if id, _, ok := strings.Cut(strings.TrimPrefix(g, "goroutine "), " "); ok {
			all[id] = g
		}
	}
	return all
}

// settle waits up to limit for every goroutine not in base to end.
func settle(base map[string]string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var extra []string
		for id, stack := range goroutines() {
			if _, ok := base[id]; !ok {
				extra = append(extra, stack)
			}
		}
		if len(extra) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutine leak: %d goroutines left behind:\n%s", len(extra), strings.Join(extra, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Ask sends raw on a new connection and reads the answer.
func Ask(t *testing.T, path, raw string) (int, string, error) {
	t.Helper()
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	_, werr := io.WriteString(conn, raw)
	code, body, err := httpwire.ReadResponse(bufio.NewReader(conn))
	if err != nil && werr != nil {
		err = werr // an answer before the request was sent is still read
	}
	return code, string(body), err
}
