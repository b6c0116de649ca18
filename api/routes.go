// Package api is the control API (SPEC section 7): which URL does what.
// Handle routes a request to a call on the supervisor and turns the result
// into an answer. Package control serves it on the control socket (and
// its metrics on metrics_listen); package ctl is its command-line client.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/httpwire"
	"github.com/tend-init/tend/signals"
	"github.com/tend-init/tend/supervise"
)

// Supervisor is what the API needs from the supervisor; every call runs on
// the supervisor's goroutine, so the API never shares its state.
type Supervisor interface {
	Statuses() ([]supervise.ServiceStatus, error)
	Status(name string) (supervise.ServiceStatus, error)
	Operate(name string, cmd supervise.Command) error
	SignalService(name string, sig unix.Signal) error
	Reopen(name string) ([]supervise.ReopenedFile, error)
	Reload() (supervise.ReloadSummary, error)
	Shutdown(why string) error
	Health() (bool, []string, error)
	Live() (bool, []string, error)
	Ready() (bool, []string, error)
	Logs(name string, n int) ([]supervise.LogLine, error)
	FollowLogs(name string) (*supervise.Follower, error)
	SubscribeEvents() (<-chan supervise.Happening, func())
	Metrics() ([]byte, error)
}

// Power is asked for a power-off or reboot (VM mode); nil elsewhere.
type Power func(reboot bool) error

// Handler answers API requests. It does not check who is asking;
// control.Serve does that before it parses anything.
type Handler struct {
	sup   Supervisor
	power Power
	log   *logrus.Logger
}

// NewHandler serves sup; power is nil outside VM mode.
func NewHandler(sup Supervisor, power Power, log *logrus.Logger) *Handler {
	return &Handler{sup: sup, power: power, log: log}
}

// Handle answers one request. Every answer, errors included, is JSON.
func (h *Handler) Handle(req *httpwire.Request) (resp httpwire.Response) {
	defer func() {
		if v := recover(); v != nil {
			h.log.Errorf("control API: panic serving %s %s: %v", req.Method, req.Path, v)
			resp = httpwire.ErrorResponse(500, "internal error")
		}
	}()
	// Split before decoding, so that "a%2Fb" is one segment (and no name).
	parts := strings.Split(strings.Trim(req.Path, "/"), "/")
	for i, p := range parts {
		parts[i], _ = url.PathUnescape(p) // httpwire.ReadRequest checked it decodes
	}
	a := api{h}
	if len(parts) == 1 {
		switch parts[0] {
		case "metrics":
			return h.Metrics(req)
		case "livez":
			return routeRead(req, func() httpwire.Response { return a.probe(req, "live", a.sup.Live) })
		case "readyz":
			return routeRead(req, func() httpwire.Response { return a.probe(req, "ready", a.sup.Ready) })
		}
	}
	if len(parts) < 2 || parts[0] != "v1" {
		return httpwire.ErrorResponse(404, "no such resource: "+req.Path)
	}
	switch {
	case len(parts) == 2 && parts[1] == "logs":
		return route(req, "GET", func() httpwire.Response { return a.logs(req, "") })
	case len(parts) == 4 && parts[1] == "services" && parts[3] == "logs":
		return route(req, "GET", func() httpwire.Response { return a.logs(req, parts[2]) })
	case len(parts) == 2 && parts[1] == "events":
		return route(req, "GET", a.events)
	case len(parts) == 2 && parts[1] == "services":
		return route(req, "GET", a.list)
	case len(parts) == 3 && parts[1] == "services":
		return route(req, "GET", func() httpwire.Response { return a.one(parts[2]) })
	case len(parts) == 4 && parts[1] == "services":
		name, verb := parts[2], parts[3]
		switch verb {
		case "start", "stop", "restart":
			return route(req, "POST", func() httpwire.Response { return a.operate(name, supervise.Command(verb)) })
		case "signal":
			return route(req, "POST", func() httpwire.Response { return a.signal(req.Body, name) })
		case "reopen":
			return route(req, "POST", func() httpwire.Response { return a.reopen(name) })
		}
		return httpwire.ErrorResponse(404, fmt.Sprintf("no such action %q (start, stop, restart, signal, reopen)", verb))
	case len(parts) == 2 && parts[1] == "reopen":
		return route(req, "POST", func() httpwire.Response { return a.reopen("") })
	case len(parts) == 2 && parts[1] == "reload":
		return route(req, "POST", a.reload)
	case len(parts) == 2 && parts[1] == "shutdown":
		return route(req, "POST", a.shutdown)
	case len(parts) == 2 && parts[1] == "health":
		return route(req, "GET", a.health)
	case len(parts) == 2 && (parts[1] == "poweroff" || parts[1] == "reboot"):
		reboot := parts[1] == "reboot"
		return route(req, "POST", func() httpwire.Response { return a.powerOff(reboot) })
	}
	return httpwire.ErrorResponse(404, "no such resource: "+req.Path)
}

// Metrics answers GET and HEAD /metrics.
func (h *Handler) Metrics(req *httpwire.Request) httpwire.Response {
	return routeRead(req, api{h}.metrics)
}

// Public answers what a TCP listener serves: /livez and /readyz when
// health (health_listen), /metrics when metrics (metrics_listen), both on
// one listener when the two keys name the same address. Any other path is
// a 404: a TCP listener does not know who connects, so it serves nothing
// that acts on tend or shows more than these.
func (h *Handler) Public(health, metrics bool) func(*httpwire.Request) httpwire.Response {
	var paths []string
	if health {
		paths = append(paths, "/livez", "/readyz")
	}
	if metrics {
		paths = append(paths, "/metrics")
	}
	refusal := "only " + paths[0] + " is served here"
	if len(paths) > 1 {
		refusal = "only " + strings.Join(paths[:len(paths)-1], ", ") + " and " + paths[len(paths)-1] + " are served here"
	}
	return func(req *httpwire.Request) httpwire.Response {
		if slices.Contains(paths, req.Path) {
			return h.Handle(req)
		}
		return httpwire.ErrorResponse(404, refusal)
	}
}

type api struct{ *Handler }

func route(req *httpwire.Request, method string, h func() httpwire.Response) httpwire.Response {
	if req.Method != method {
		r := httpwire.ErrorResponse(405, fmt.Sprintf("%s needs %s, not %s", req.Path, method, req.Method))
		r.Allow = method
		return r
	}
	return h()
}

// routeRead is route for a resource read with GET or HEAD: a HEAD gets
// the GET's answer without its body.
func routeRead(req *httpwire.Request, h func() httpwire.Response) httpwire.Response {
	switch req.Method {
	case "GET":
		return h()
	case "HEAD":
		r := h()
		r.Head = true
		return r
	}
	r := httpwire.ErrorResponse(405, fmt.Sprintf("%s needs GET or HEAD, not %s", req.Path, req.Method))
	r.Allow = "GET, HEAD"
	return r
}

func (a api) list() httpwire.Response {
	st, err := a.sup.Statuses()
	if err != nil {
		return failure(err)
	}
	return httpwire.Response{Code: 200, Body: map[string]any{"services": st}}
}

func (a api) one(name string) httpwire.Response {
	st, err := a.sup.Status(name)
	if err != nil {
		return failure(err)
	}
	return httpwire.Response{Code: 200, Body: st}
}

func (a api) operate(name string, cmd supervise.Command) httpwire.Response {
	if err := a.sup.Operate(name, cmd); err != nil {
		return failure(err)
	}
	return a.one(name)
}

func (a api) signal(body []byte, name string) httpwire.Response {
	var req struct {
		Signal json.RawMessage `json:"signal"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return httpwire.ErrorResponse(400, err.Error())
	}
	var text string
	if err := json.Unmarshal(req.Signal, &text); err != nil {
		// a number is accepted as well as a name
		var n int
		if json.Unmarshal(req.Signal, &n) != nil {
			return httpwire.ErrorResponse(400, `the body must be {"signal": "USR1"} (a name or a number)`)
		}
		text = fmt.Sprint(n)
	}
	sig, err := signals.Parse(text)
	if err != nil {
		return httpwire.ErrorResponse(400, err.Error())
	}
	if err := a.sup.SignalService(name, sig); err != nil {
		return failure(err)
	}
	return httpwire.Response{Code: 200, Body: map[string]string{"service": name, "signal": signals.Name(sig)}}
}

// reopen opens the output files tend writes again (POST /v1/reopen,
// POST /v1/services/NAME/reopen).
func (a api) reopen(name string) httpwire.Response {
	files, err := a.sup.Reopen(name)
	if err != nil && files == nil {
		return failure(err)
	}
	if err != nil {
		return httpwire.Response{Code: 500, Body: map[string]any{
			"error":    "some output files could not be opened again; lines go on into the old ones",
			"errors":   strings.Split(err.Error(), "\n"),
			"reopened": files,
		}}
	}
	return httpwire.Response{Code: 200, Body: map[string]any{"reopened": files}}
}

// reload answers with what the reload did, not with every service: the
// answer stays as small as the change (GET /v1/services has the rest).
func (a api) reload() httpwire.Response {
	sum, err := a.sup.Reload()
	if err != nil {
		return httpwire.Response{Code: 422, Body: map[string]any{
			"error":  "the config is invalid; the running config stays in force",
			"errors": strings.Split(err.Error(), "\n"),
		}}
	}
	names := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return httpwire.Response{Code: 200, Body: map[string]any{
		"added":     names(sum.Added),
		"removed":   names(sum.Removed),
		"re_added":  names(sum.ReAdded),
		"restarted": names(sum.Restarted),
		"updated":   names(sum.Updated),
		"unchanged": sum.Unchanged,
		"files":     sum.Files,
	}}
}

func (a api) shutdown() httpwire.Response {
	if err := a.sup.Shutdown("operator asked over the control socket"); err != nil {
		return failure(err)
	}
	return httpwire.Response{Code: 202, Body: map[string]string{"status": "shutting down"}}
}

func (a api) health() httpwire.Response {
	ok, reasons, err := a.sup.Health()
	if err != nil {
		return failure(err)
	}
	if ok {
		return httpwire.Response{Code: 200, Body: map[string]any{"healthy": true}}
	}
	return httpwire.Response{Code: 503, Body: map[string]any{"healthy": false, "reasons": reasons}}
}

func (a api) powerOff(reboot bool) httpwire.Response {
	if a.power == nil {
		return httpwire.ErrorResponse(409, "power-off and reboot are for VM mode; use shutdown")
	}
	if err := a.power(reboot); err != nil {
		return failure(err)
	}
	return httpwire.Response{Code: 202, Body: map[string]string{"status": "shutting down"}}
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

func failure(err error) httpwire.Response {
	switch {
	case errors.Is(err, supervise.ErrUnknownService):
		return httpwire.ErrorResponse(404, err.Error())
	case errors.Is(err, supervise.ErrConflict):
		return httpwire.ErrorResponse(409, err.Error())
	}
	return httpwire.ErrorResponse(503, err.Error())
}
