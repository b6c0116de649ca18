// Package ctl is `tend ctl`, the control API's command-line client: one
// request on the control socket per verb, the answer printed for people
// (or as it came, with --json).
package ctl

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/httpwire"
	"github.com/tend-init/tend/logging"
	"github.com/tend-init/tend/supervise"
)

const ctlUsage = `usage: tend ctl [--socket PATH] VERB [ARGS]
  status [NAME] [--json]   services: NAME STATE READY PID RESTARTS UPTIME LAST-EXIT
  start|stop|restart NAME
  signal NAME SIGNAL
  reopen [NAME]            open again the output files tend writes (output_max_size), after a logrotate
  reload                   read the config file again
  shutdown                 stop everything and exit
  health                   exit 0 when every service is healthy, else 1
  logs [-f] [-n N] [NAME] [--json] [--raw]
                           recent output of NAME (of every service without it); -f follows
  events [--json] [--raw]  state, readiness, health, reload and shutdown events as they happen
  metrics                  the Prometheus metrics
  poweroff|reboot          VM mode only
On a terminal, control characters in what services wrote are shown escaped
(\x1b); --raw writes them as they are.
The socket is --socket, else control_socket from $TEND_CONFIG, else the default:
` + config.RootControlSocket + ` for root, else $XDG_RUNTIME_DIR/tend.sock (a directory of the
user's own), else /tmp/tend-UID/tend.sock, as tend chooses it for the same user.`

// exitDropped is the exit status when tend dropped a followed stream
// because it was read too slowly: not 0, which is a stream that tend ended
// by exiting, nor 1, which is a refusal.
const exitDropped = 3

// isTerminal tells whether w is a terminal; a variable, for the tests.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Main runs `tend ctl` and returns its exit status: 0 done, 1 refused or
// unhealthy or unreachable, 2 a usage error, 3 a followed stream that tend
// dropped because it was read too slowly.
func Main(args []string, stdout, stderr io.Writer) int {
	socket, jsonOut, raw := "", false, false
	var rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--socket" && i+1 < len(args):
			socket = args[i+1]
			i++
		case strings.HasPrefix(a, "--socket="):
			socket = strings.TrimPrefix(a, "--socket=")
		case a == "--json":
			jsonOut = true
		case a == "--raw":
			raw = true
		case a == "-h" || a == "--help":
			fmt.Fprintln(stdout, ctlUsage)
			return 0
		default:
			rest = append(rest, a)
		}
	}
	if len(rest) == 0 {
		fmt.Fprintln(stderr, ctlUsage)
		return 2
	}
	where := socketFrom{flag: socket != ""}
	if socket == "" {
		socket, where = socketFromConfig()
	}
	// Like journalctl: escaped for a terminal, as they are for a pipe or a
	// file, where the bytes may be what is wanted.
	c := &client{socket: socket, where: where, out: stdout, errw: stderr, json: jsonOut,
		escapeOut: !raw && isTerminal(stdout), escapeErr: !raw && isTerminal(stderr)}
	verb, params := rest[0], rest[1:]
	if verb == "logs" {
		return c.logs(params)
	}
	need := map[string]int{"status": -1, "start": 1, "stop": 1, "restart": 1, "signal": 2, "reopen": -1,
		"reload": 0, "shutdown": 0, "health": 0, "poweroff": 0, "reboot": 0, "events": 0, "metrics": 0}
	n, known := need[verb]
	if !known || (n >= 0 && len(params) != n) || (n < 0 && len(params) > 1) {
		fmt.Fprintf(stderr, "tend ctl: bad use of %q\n%s\n", verb, ctlUsage)
		return 2
	}
	switch verb {
	case "status":
		if len(params) == 1 {
			return c.show("GET", "/v1/services/"+params[0], nil, c.table)
		}
		return c.show("GET", "/v1/services", nil, c.table)
	case "start", "stop", "restart":
		return c.show("POST", "/v1/services/"+params[0]+"/"+verb, nil, c.table)
	case "signal":
		body, _ := json.Marshal(map[string]string{"signal": params[1]})
		return c.show("POST", "/v1/services/"+params[0]+"/signal", body, c.quiet)
	case "reopen":
		path := "/v1/reopen"
		if len(params) == 1 {
			path = "/v1/services/" + params[0] + "/reopen"
		}
		return c.show("POST", path, nil, c.reopened)
	case "health":
		return c.health()
	case "events":
		return c.stream("/v1/events", c.event)
	case "metrics":
		return c.show("GET", "/metrics", nil, func(b []byte) error { _, err := c.out.Write(b); return err })
	default: // reload, shutdown, poweroff, reboot
		return c.show("POST", "/v1/"+verb, nil, c.quiet)
	}
}

// socketFromConfig finds the socket of the tend that TEND_CONFIG belongs to.
// It reads only the file's top-level keys: tend ctl does not pay for every
// service of a big config. Without control_socket there, or without
// TEND_CONFIG, it is the default that tend chooses for the same user and
// environment (config.DefaultControlSocket).
func socketFromConfig() (string, socketFrom) {
	byDefault := func(w socketFrom) (string, socketFrom) {
		place := config.DefaultControlSocket(os.LookupEnv)
		w.place = &place
		return place.Path, w
	}
	path := os.Getenv("TEND_CONFIG")
	if path == "" {
		return byDefault(socketFrom{})
	}
	socket, place, err := config.ControlSocket(path, os.LookupEnv)
	switch {
	case err != nil:
		return byDefault(socketFrom{config: path, err: err})
	case place != nil:
		return socket, socketFrom{config: path, place: place}
	case socket == "":
		return byDefault(socketFrom{config: path, off: true})
	}
	return socket, socketFrom{config: path, fromConfig: true}
}

// socketFrom is where the socket's path came from, for the hint when it
// cannot be reached.
type socketFrom struct {
	flag       bool                // --socket
	config     string              // TEND_CONFIG
	fromConfig bool                // control_socket of config
	off        bool                // config has control_socket = ""
	err        error               // config could not be read
	place      *config.SocketPlace // the default, and how it was chosen
}

type client struct {
	socket               string
	where                socketFrom
	out                  io.Writer
	errw                 io.Writer
	json                 bool
	escapeOut, escapeErr bool // stdout, stderr is a terminal: escape control characters
}

// text is s as it may be written to stdout: escaped for a terminal.
func (c *client) text(s string) string {
	if c.escapeOut {
		return logging.Printable(s)
	}
	return s
}

// errText is s as it may be written to stderr.
func (c *client) errText(s string) string {
	if c.escapeErr {
		return logging.Printable(s)
	}
	return s
}

// jsonOut is JSON text as it may be written to stdout: JSON still, with
// what encoding/json leaves raw escaped for a terminal.
func (c *client) jsonOut(b []byte) []byte {
	if c.escapeOut {
		return logging.PrintableJSON(b)
	}
	return b
}

// show sends one request and prints the answer with render (or as JSON).
// Any answer but a 2xx is explained on stderr and is exit status 1.
func (c *client) show(method, path string, body []byte, render func([]byte) error) int {
	code, data, err := c.do(method, path, body)
	if err != nil {
		c.unreachable(err)
		return 1
	}
	if c.json {
		c.out.Write(c.jsonOut(data))
	}
	if code < 200 || code > 299 {
		c.explain(code, data)
		return 1
	}
	if !c.json {
		if err := render(data); err != nil {
			fmt.Fprintf(c.errw, "tend ctl: %v\n", err)
			return 1
		}
	}
	return 0
}

// explain prints a refusal: the error tend gave and its details, or, from
// something that did not answer in JSON, the status and the start of the
// body. A 4xx's message says enough by itself; any other status is named,
// so that "tend is shutting down" is not mistaken for a bad request.
func (c *client) explain(code int, data []byte) {
	var e struct {
		Error   string   `json:"error"`
		Errors  []string `json:"errors"`
		Reasons []string `json:"reasons"`
	}
	status := fmt.Sprintf("tend answered %d %s", code, httpwire.StatusText(code))
	if json.Unmarshal(data, &e) != nil || (e.Error == "" && e.Errors == nil && e.Reasons == nil) {
		text := strings.TrimSpace(string(data))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		if text == "" {
			fmt.Fprintf(c.errw, "tend ctl: %s with no body\n", status)
			return
		}
		fmt.Fprintf(c.errw, "tend ctl: %s: %q\n", status, text)
		return
	}
	switch {
	case e.Error == "":
		fmt.Fprintf(c.errw, "tend ctl: %s:\n", status)
	case code >= 400 && code < 500:
		fmt.Fprintf(c.errw, "tend ctl: %s\n", c.errText(e.Error))
	default:
		fmt.Fprintf(c.errw, "tend ctl: %s: %s\n", status, c.errText(e.Error))
	}
	for _, line := range append(e.Errors, e.Reasons...) {
		fmt.Fprintf(c.errw, "  %s\n", c.errText(line))
	}
}

// do makes one request on a fresh connection; a request tend did not take
// (httpwire.ErrNoAnswer) is sent again, up to three times within half a
// second.
func (c *client) do(method, path string, body []byte) (int, []byte, error) {
	wait := 20 * time.Millisecond
	for attempt := 1; ; attempt++ {
		code, data, err := c.once(method, path, body)
		if !errors.Is(err, httpwire.ErrNoAnswer) || attempt == 4 {
			return code, data, err
		}
		time.Sleep(wait)
		wait *= 3
	}
}

func (c *client) once(method, path string, body []byte) (int, []byte, error) {
	conn, err := c.dial()
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: tend\r\nContent-Length: %d\r\nConnection: close\r\n", method, path, len(body))
	if body != nil {
		head += "Content-Type: application/json\r\n"
	}
	if _, err := conn.Write(append([]byte(head+"\r\n"), body...)); err != nil {
		// tend may have answered before the request arrived (a 503 when
		// every slot is busy) and closed: that answer says more.
		code, data, rerr := httpwire.ReadResponse(bufio.NewReader(conn))
		if rerr == nil || errors.Is(rerr, httpwire.ErrNoAnswer) {
			return code, data, rerr
		}
		return 0, nil, err
	}
	return httpwire.ReadResponse(bufio.NewReader(conn))
}

func (c *client) quiet([]byte) error { return nil }

// reopened prints the output files that tend opened again, one a line.
func (c *client) reopened(data []byte) error {
	var r struct {
		Reopened []supervise.ReopenedFile `json:"reopened"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("unexpected answer: %v", err)
	}
	if len(r.Reopened) == 0 {
		fmt.Fprintln(c.out, "no service has an output file that tend writes (output = PATH with output_max_size)")
	}
	for _, f := range r.Reopened {
		if f.Open {
			fmt.Fprintf(c.out, "%s: reopened %s\n", f.Service, f.File)
		} else {
			fmt.Fprintf(c.out, "%s: %s is not open (no run); its next start opens it\n", f.Service, f.File)
		}
	}
	return nil
}

// table prints services as NAME STATE READY PID RESTARTS UPTIME LAST-EXIT.
func (c *client) table(data []byte) error {
	var list struct {
		Services []supervise.ServiceStatus `json:"services"`
	}
	if err := json.Unmarshal(data, &list); err != nil || list.Services == nil {
		var one supervise.ServiceStatus
		if err := json.Unmarshal(data, &one); err != nil {
			return fmt.Errorf("unreadable answer: %v", err)
		}
		list.Services = []supervise.ServiceStatus{one}
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tREADY\tPID\tRESTARTS\tUPTIME\tLAST-EXIT")
	for _, s := range list.Services {
		pid, uptime, last := "-", "-", "-"
		if s.PID != 0 {
			pid = fmt.Sprint(s.PID)
			uptime = time.Duration(s.Uptime * float64(time.Second)).Round(time.Second).String()
		}
		if e := s.LastExit; e != nil {
			last = fmt.Sprintf("code %d", e.Code)
			if e.Signal != "" {
				last = e.Signal
			}
			last += " " + e.Time.Local().Format("15:04:05")
		}
		ready := "no"
		if s.Ready {
			ready = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.State, ready, pid, s.Restarts, uptime, last)
	}
	return tw.Flush()
}

// health asks /v1/health: "healthy" and 0, or "unhealthy:" with every
// reason and 1. Any other answer (tend shutting down, say) is explained as
// a refusal is, never printed as an unhealthy verdict without its reason.
func (c *client) health() int {
	code, data, err := c.do("GET", "/v1/health", nil)
	if err != nil {
		c.unreachable(err)
		return 1
	}
	if c.json {
		c.out.Write(c.jsonOut(data))
	}
	var h struct {
		Healthy *bool    `json:"healthy"`
		Reasons []string `json:"reasons"`
	}
	verdict := json.Unmarshal(data, &h) == nil && h.Healthy != nil
	switch {
	case code == 200 && verdict && *h.Healthy:
		if !c.json {
			fmt.Fprintln(c.out, "healthy")
		}
		return 0
	case code == 503 && verdict && !*h.Healthy:
		if !c.json {
			fmt.Fprintln(c.out, "unhealthy:")
			for _, r := range h.Reasons {
				fmt.Fprintln(c.out, "  "+c.text(r))
			}
			if len(h.Reasons) == 0 {
				fmt.Fprintln(c.out, "  (tend gave no reason)")
			}
		}
		return 1
	}
	c.explain(code, data)
	return 1
}
