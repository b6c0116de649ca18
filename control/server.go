// Package control is tend's operator interface: an HTTP/1.1 JSON API on a
// unix socket (SPEC section 7), and `tend ctl`, its command-line client.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/signals"
	"github.com/tend-init/tend/supervise"
)

// Limits that keep a client from holding tend's attention.
const (
	maxBody        = 64 << 10
	maxHeader      = 16 << 10
	headerTimeout  = 5 * time.Second
	requestTimeout = 15 * time.Second
	idleTimeout    = 30 * time.Second
)

// Supervisor is what the API needs from the supervisor; every call runs on
// the supervisor's goroutine, so the API never shares its state.
type Supervisor interface {
	Statuses() ([]supervise.ServiceStatus, error)
	Status(name string) (supervise.ServiceStatus, error)
	Operate(name string, cmd supervise.Command) error
	SignalService(name string, sig unix.Signal) error
	Reload() error
	Shutdown(why string) error
	Health() (bool, []string, error)
}

// Power is asked for a power-off or reboot (VM mode); nil elsewhere.
type Power func(reboot bool) error

// Handler serves the API. It does not check who is asking; Serve does.
func Handler(sup Supervisor, power Power, log *logrus.Logger) http.Handler {
	return &api{sup: sup, power: power, log: log}
}

type api struct {
	sup   Supervisor
	power Power
	log   *logrus.Logger
}

// Serve listens on path (mode 0600) and serves the API until ctx ends.
// Connections from a uid other than root's or tend's own are refused.
func Serve(ctx context.Context, path string, h http.Handler, log *logrus.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// A socket left by an earlier tend is stale: it is ours to replace.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	// chmod after bind leaves a moment at the umask's mode; the peer check
	// below refuses strangers in that moment too.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	srv := &http.Server{
		Handler:           peerCheck(h),
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       requestTimeout,
		WriteTimeout:      requestTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeader,
		ConnContext:       withPeer,
		// Malformed requests are the client's problem: debug level only.
		ErrorLog: stdlog.New(log.WriterLevel(logrus.DebugLevel), "control socket: ", 0),
	}
	guard.Go("control socket", func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorf("control socket %s: %v", path, err)
		}
	})
	guard.Go("control socket closer", func() {
		<-ctx.Done()
		srv.Close()
		os.Remove(path)
	})
	return nil
}

type peerKey struct{}

// withPeer records the connecting process's credentials (SO_PEERCRED).
func withPeer(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, cred)
}

func peerCheck(next http.Handler) http.Handler {
	own := uint32(os.Getuid())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cred, _ := r.Context().Value(peerKey{}).(*unix.Ucred)
		if cred == nil || (cred.Uid != 0 && cred.Uid != own) {
			writeError(w, http.StatusForbidden, "only root and tend's own user may use this socket")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP routes by hand: every answer, errors included, is JSON.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			a.log.Errorf("control API: panic serving %s %s: %v", r.Method, r.URL.Path, v)
			writeError(w, http.StatusInternalServerError, "internal error")
		}
	}()
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "v1" {
		writeError(w, http.StatusNotFound, "no such resource: "+r.URL.Path)
		return
	}
	switch {
	case len(parts) == 2 && parts[1] == "services":
		a.route(w, r, http.MethodGet, a.list)
	case len(parts) == 3 && parts[1] == "services":
		a.route(w, r, http.MethodGet, func(w http.ResponseWriter, r *http.Request) { a.one(w, parts[2]) })
	case len(parts) == 4 && parts[1] == "services":
		name, verb := parts[2], parts[3]
		switch verb {
		case "start", "stop", "restart":
			a.route(w, r, http.MethodPost, func(w http.ResponseWriter, r *http.Request) {
				a.operate(w, name, supervise.Command(verb))
			})
		case "signal":
			a.route(w, r, http.MethodPost, func(w http.ResponseWriter, r *http.Request) { a.signal(w, r, name) })
		default:
			writeError(w, http.StatusNotFound, fmt.Sprintf("no such action %q (start, stop, restart, signal)", verb))
		}
	case len(parts) == 2 && parts[1] == "reload":
		a.route(w, r, http.MethodPost, a.reload)
	case len(parts) == 2 && parts[1] == "shutdown":
		a.route(w, r, http.MethodPost, a.shutdown)
	case len(parts) == 2 && parts[1] == "health":
		a.route(w, r, http.MethodGet, a.health)
	case len(parts) == 2 && (parts[1] == "poweroff" || parts[1] == "reboot"):
		reboot := parts[1] == "reboot"
		a.route(w, r, http.MethodPost, func(w http.ResponseWriter, r *http.Request) { a.powerOff(w, reboot) })
	default:
		writeError(w, http.StatusNotFound, "no such resource: "+r.URL.Path)
	}
}

func (a *api) route(w http.ResponseWriter, r *http.Request, method string, h http.HandlerFunc) {
	if r.Method != method {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s needs %s, not %s", r.URL.Path, method, r.Method))
		return
	}
	h(w, r)
}

func (a *api) list(w http.ResponseWriter, _ *http.Request) {
	st, err := a.sup.Statuses()
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": st})
}

func (a *api) one(w http.ResponseWriter, name string) {
	st, err := a.sup.Status(name)
	if err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *api) operate(w http.ResponseWriter, name string, cmd supervise.Command) {
	if err := a.sup.Operate(name, cmd); err != nil {
		writeFailure(w, err)
		return
	}
	a.one(w, name)
}

func (a *api) signal(w http.ResponseWriter, r *http.Request, name string) {
	var body struct {
		Signal json.RawMessage `json:"signal"`
	}
	if err := readJSON(w, r, &body); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var text string
	if err := json.Unmarshal(body.Signal, &text); err != nil {
		// a number is accepted as well as a name
		var n int
		if json.Unmarshal(body.Signal, &n) != nil {
			writeError(w, http.StatusBadRequest, `the body must be {"signal": "USR1"} (a name or a number)`)
			return
		}
		text = fmt.Sprint(n)
	}
	sig, err := signals.Parse(text)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.sup.SignalService(name, sig); err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"service": name, "signal": signals.Name(sig)})
}

func (a *api) reload(w http.ResponseWriter, _ *http.Request) {
	if err := a.sup.Reload(); err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": "the config is invalid; the running config stays in force", "errors": strings.Split(err.Error(), "\n")})
		return
	}
	a.list(w, nil)
}

func (a *api) shutdown(w http.ResponseWriter, _ *http.Request) {
	if err := a.sup.Shutdown("operator asked over the control socket"); err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "shutting down"})
}

func (a *api) health(w http.ResponseWriter, _ *http.Request) {
	ok, reasons, err := a.sup.Health()
	if err != nil {
		writeFailure(w, err)
		return
	}
	if ok {
		writeJSON(w, http.StatusOK, map[string]any{"healthy": true})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"healthy": false, "reasons": reasons})
}

func (a *api) powerOff(w http.ResponseWriter, reboot bool) {
	if a.power == nil {
		writeError(w, http.StatusConflict, "power-off and reboot are for VM mode; use shutdown")
		return
	}
	if err := a.power(reboot); err != nil {
		writeFailure(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "shutting down"})
}

// readJSON decodes a small JSON body strictly.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty body: send JSON")
		}
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	if dec.More() {
		return errors.New("invalid JSON body: more than one value")
	}
	return nil
}

func writeFailure(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, supervise.ErrUnknownService):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, supervise.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	default:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	}
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
