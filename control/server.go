// Package control is tend's operator interface: an HTTP/1.1 JSON API on a
// unix socket (SPEC section 7), and `tend ctl`, its command-line client.
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
	"net/url"
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

// Handler answers API requests. It does not check who is asking; Serve
// does that before it parses anything.
type Handler struct {
	sup   Supervisor
	power Power
	log   *logrus.Logger
}

// NewHandler serves sup; power is nil outside VM mode.
func NewHandler(sup Supervisor, power Power, log *logrus.Logger) *Handler {
	return &Handler{sup: sup, power: power, log: log}
}

// maxConns bounds the connections served at once; more are answered 503
// at once, so no client can hold tend's attention.
const maxConns = 32

// Serve listens on path (mode 0600) and serves the API until ctx ends.
// Connections from a uid other than root's or tend's own are refused.
func Serve(ctx context.Context, path string, h *Handler, log *logrus.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// A socket that nobody answers on was left by an earlier tend: it is
	// ours to replace. One that answers belongs to a tend still running.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("another tend is listening on %s; set control_socket to another path", path)
		}
		os.Remove(path)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return err
	}
	// chmod after bind leaves a moment at the umask's mode; the peer check
	// refuses strangers in that moment too.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return err
	}
	slots := make(chan struct{}, maxConns)
	guard.Go("control socket", func() {
		for {
			conn, err := l.AcceptUnix()
			if err != nil {
				if ctx.Err() == nil {
					log.Errorf("control socket %s: %v", path, err)
				}
				return
			}
			select {
			case slots <- struct{}{}:
				guard.Go("control connection", func() {
					defer func() { <-slots }()
					h.serveConn(conn)
				})
			default:
				conn.SetWriteDeadline(time.Now().Add(time.Second))
				writeResponse(conn, errorResponse(503, "too many connections; try again"))
				conn.Close()
			}
		}
	})
	guard.Go("control socket closer", func() {
		<-ctx.Done()
		l.Close()
		os.Remove(path)
	})
	return nil
}

// serveConn answers the one request of a connection.
func (h *Handler) serveConn(conn *net.UnixConn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(requestTimeout))
	if uid, ok := peerUID(conn); !ok || (uid != 0 && uid != uint32(os.Getuid())) {
		writeResponse(conn, errorResponse(403, "only root and tend's own user may use this socket"))
		// Closing with the request unread would reset the connection and
		// lose the answer: drain a bounded amount first.
		conn.CloseWrite()
		conn.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(conn, maxHeader+maxBody))
		return
	}
	conn.SetReadDeadline(time.Now().Add(headerTimeout))
	req, err := readRequest(bufio.NewReaderSize(conn, 4096))
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			writeResponse(conn, errorResponse(he.code, he.msg))
		}
		return // EOF or a time-out: nobody to answer
	}
	conn.SetWriteDeadline(time.Now().Add(requestTimeout))
	writeResponse(conn, h.Handle(req))
}

// peerUID is the connecting process's uid (SO_PEERCRED).
func peerUID(conn *net.UnixConn) (uint32, bool) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, false
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if cred == nil {
		return 0, false
	}
	return cred.Uid, true
}

// Handle answers one request. Every answer, errors included, is JSON.
func (h *Handler) Handle(req *Request) (resp Response) {
	defer func() {
		if v := recover(); v != nil {
			h.log.Errorf("control API: panic serving %s %s: %v", req.Method, req.Path, v)
			resp = errorResponse(500, "internal error")
		}
	}()
	// Split before decoding, so that "a%2Fb" is one segment (and no name).
	parts := strings.Split(strings.Trim(req.Path, "/"), "/")
	for i, p := range parts {
		parts[i], _ = url.PathUnescape(p) // readRequest checked it decodes
	}
	if len(parts) < 2 || parts[0] != "v1" {
		return errorResponse(404, "no such resource: "+req.Path)
	}
	a := api{h}
	switch {
	case len(parts) == 2 && parts[1] == "services":
		return route(req, "GET", a.list)
	case len(parts) == 3 && parts[1] == "services":
		return route(req, "GET", func() Response { return a.one(parts[2]) })
	case len(parts) == 4 && parts[1] == "services":
		name, verb := parts[2], parts[3]
		switch verb {
		case "start", "stop", "restart":
			return route(req, "POST", func() Response { return a.operate(name, supervise.Command(verb)) })
		case "signal":
			return route(req, "POST", func() Response { return a.signal(req.Body, name) })
		}
		return errorResponse(404, fmt.Sprintf("no such action %q (start, stop, restart, signal)", verb))
	case len(parts) == 2 && parts[1] == "reload":
		return route(req, "POST", a.reload)
	case len(parts) == 2 && parts[1] == "shutdown":
		return route(req, "POST", a.shutdown)
	case len(parts) == 2 && parts[1] == "health":
		return route(req, "GET", a.health)
	case len(parts) == 2 && (parts[1] == "poweroff" || parts[1] == "reboot"):
		reboot := parts[1] == "reboot"
		return route(req, "POST", func() Response { return a.powerOff(reboot) })
	}
	return errorResponse(404, "no such resource: "+req.Path)
}

type api struct{ *Handler }

func route(req *Request, method string, h func() Response) Response {
	if req.Method != method {
		r := errorResponse(405, fmt.Sprintf("%s needs %s, not %s", req.Path, method, req.Method))
		r.Allow = method
		return r
	}
	return h()
}

func (a api) list() Response {
	st, err := a.sup.Statuses()
	if err != nil {
		return failure(err)
	}
	return Response{Code: 200, Body: map[string]any{"services": st}}
}

func (a api) one(name string) Response {
	st, err := a.sup.Status(name)
	if err != nil {
		return failure(err)
	}
	return Response{Code: 200, Body: st}
}

func (a api) operate(name string, cmd supervise.Command) Response {
	if err := a.sup.Operate(name, cmd); err != nil {
		return failure(err)
	}
	return a.one(name)
}

func (a api) signal(body []byte, name string) Response {
	var req struct {
		Signal json.RawMessage `json:"signal"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return errorResponse(400, err.Error())
	}
	var text string
	if err := json.Unmarshal(req.Signal, &text); err != nil {
		// a number is accepted as well as a name
		var n int
		if json.Unmarshal(req.Signal, &n) != nil {
			return errorResponse(400, `the body must be {"signal": "USR1"} (a name or a number)`)
		}
		text = fmt.Sprint(n)
	}
	sig, err := signals.Parse(text)
	if err != nil {
		return errorResponse(400, err.Error())
	}
	if err := a.sup.SignalService(name, sig); err != nil {
		return failure(err)
	}
	return Response{Code: 200, Body: map[string]string{"service": name, "signal": signals.Name(sig)}}
}

func (a api) reload() Response {
	if err := a.sup.Reload(); err != nil {
		return Response{Code: 422, Body: map[string]any{
			"error":  "the config is invalid; the running config stays in force",
			"errors": strings.Split(err.Error(), "\n"),
		}}
	}
	return a.list()
}

func (a api) shutdown() Response {
	if err := a.sup.Shutdown("operator asked over the control socket"); err != nil {
		return failure(err)
	}
	return Response{Code: 202, Body: map[string]string{"status": "shutting down"}}
}

func (a api) health() Response {
	ok, reasons, err := a.sup.Health()
	if err != nil {
		return failure(err)
	}
	if ok {
		return Response{Code: 200, Body: map[string]any{"healthy": true}}
	}
	return Response{Code: 503, Body: map[string]any{"healthy": false, "reasons": reasons}}
}

func (a api) powerOff(reboot bool) Response {
	if a.power == nil {
		return errorResponse(409, "power-off and reboot are for VM mode; use shutdown")
	}
	if err := a.power(reboot); err != nil {
		return failure(err)
	}
	return Response{Code: 202, Body: map[string]string{"status": "shutting down"}}
}

// decodeJSON reads one small JSON value strictly.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("empty body: send JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	if dec.More() {
		return errors.New("invalid JSON body: more than one value")
	}
	return nil
}

func failure(err error) Response {
	switch {
	case errors.Is(err, supervise.ErrUnknownService):
		return errorResponse(404, err.Error())
	case errors.Is(err, supervise.ErrConflict):
		return errorResponse(409, err.Error())
	}
	return errorResponse(503, err.Error())
}

func errorResponse(code int, msg string) Response {
	return Response{Code: code, Body: map[string]string{"error": msg}}
}
