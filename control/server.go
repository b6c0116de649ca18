// Package control is tend's operator interface: an HTTP/1.1 JSON API on a
// unix socket (SPEC section 7), and `tend ctl`, its command-line client.
package control

import (
	"bufio"
	"bytes"
	"container/list"
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
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/signals"
	"github.com/tend-init/tend/supervise"
)

// Limits that keep a client from holding tend's attention. The head must
// arrive within headTimeout of the accept: an operator's client sends it
// at once, and a short wait frees an idle client's slot early even when
// nobody else needs it.
const (
	maxBody       = 64 << 10
	maxHeader     = 16 << 10
	headTimeout   = 2 * time.Second
	bodyTimeout   = 10 * time.Second // after the head
	writeTimeout  = 10 * time.Second
	lingerTimeout = time.Second // for the client to read an early answer
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
	Logs(name string, n int) ([]supervise.LogLine, error)
	FollowLogs(name string) (<-chan supervise.LogLine, func(), error)
	SubscribeEvents() (<-chan supervise.Happening, func())
	Metrics() ([]byte, error)
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

// maxConns bounds the connections served at once, so that no number of
// clients can take more than that many fds and goroutines from tend. A
// connection's slot is "reading" until its whole request has arrived, and
// when every slot is taken a reading one is closed to make room for the
// newcomer (see evictLocked for which). So clients that connect and send
// nothing, however many and however often they come back, cannot keep an
// operator out: an operator's client sends its request as it connects.
// Only when every slot holds a request being answered, or one still
// arriving briskly, is a newcomer refused with a 503. (A separate reserve
// of slots would not do: idle clients would fill the reserve too.)
const maxConns = 32

// slowRequest is how long a client that is sending its request keeps its
// slot against newcomers: far more than a program needs, less than a
// deliberately slow client would like.
const slowRequest = 500 * time.Millisecond

// After a failed accept (out of fds, ...) the next try waits, as net/http
// does: 5 ms, doubling up to 1 s, so that a shortage neither spins the
// loop nor ends it.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// acceptor is the listener: a *net.UnixListener, or a test's wrapper.
type acceptor interface {
	AcceptUnix() (*net.UnixConn, error)
	Close() error
}

// Serve listens on path (mode 0600) and serves the API until ctx ends.
// Connections from a uid other than root's or tend's own are refused.
//
// The function it returns waits, up to limit, for the answers of requests
// already taken: every request tend accepted is answered, also the one
// (tend ctl shutdown, or a stop after which tend ends) that makes tend exit.
func Serve(ctx context.Context, path string, h *Handler, log *logrus.Logger) (answered func(limit time.Duration) bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	// A socket that nobody answers on was left by an earlier tend: it is
	// ours to replace. One that answers belongs to a tend still running.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another tend is listening on %s; set control_socket to another path", path)
		}
		os.Remove(path)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// chmod after bind leaves a moment at the umask's mode; the peer check
	// refuses strangers in that moment too.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	s := serve(ctx, l, path, h, log)
	return s.answered, nil
}

// server is one listening socket's state.
type server struct {
	name      string // the socket's path, for the log
	h         *Handler
	log       *logrus.Logger
	slots     *slots
	answering inflight  // requests taken and not yet answered
	streams   streamSet // connections following logs or events
}

// answered waits up to limit for every request taken to be answered.
func (s *server) answered(limit time.Duration) bool { return s.answering.wait(limit) }

// inflight counts requests being answered. Unlike a WaitGroup it may be
// waited for while new requests still come in, and the wait is bounded.
type inflight struct {
	mu      sync.Mutex
	n       int
	waiters []chan struct{}
}

func (f *inflight) add() {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 {
		for _, w := range f.waiters {
			close(w)
		}
		f.waiters = nil
	}
}

func (f *inflight) wait(limit time.Duration) bool {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return true
	}
	w := make(chan struct{})
	f.waiters = append(f.waiters, w)
	f.mu.Unlock()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-w:
		return true
	case <-t.C:
		return false
	}
}

// serve runs the accept loop on l until ctx ends, then closes l, removes
// the socket file and closes the connections still sending their request
// (those being answered are answered).
func serve(ctx context.Context, l acceptor, path string, h *Handler, log *logrus.Logger) *server {
	s := &server{name: path, h: h, log: log, slots: newSlots(maxConns)}
	guard.Go("control socket", func() { s.acceptLoop(ctx, l) })
	guard.Go("control socket closer", func() {
		<-ctx.Done()
		l.Close()
		os.Remove(path)
		s.slots.closeReading()
		s.streams.closeAll()
	})
	return s
}

// acceptLogEvery: a burst of failed accepts that begins within this long
// of the last one logged is only counted, so that a shortage that comes
// and goes (out of fds, an idle client's fd freed, out again) logs two
// lines a minute, not two per connection.
const acceptLogEvery = time.Minute

func (s *server) acceptLoop(ctx context.Context, l acceptor) {
	var (
		backoff  time.Duration
		failed   int  // in this burst
		unlogged int  // in earlier bursts that were not logged
		logged   bool // this burst's start was logged
		lastLog  time.Time
	)
	for {
		conn, err := l.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if failed++; failed == 1 && time.Since(lastLog) >= acceptLogEvery {
				s.log.Errorf("control socket %s: %v; retrying with a backoff up to %s", s.name, err, acceptBackoffMax)
				logged, lastLog = true, time.Now()
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			// Out of fds: an idle or slow client holds one that an
			// operator's connection needs more.
			if (errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE)) && s.slots.evictOne() {
				backoff = acceptBackoffMin
			}
			wait := time.NewTimer(backoff)
			select {
			case <-wait.C:
			case <-ctx.Done():
				wait.Stop()
				return
			}
			continue
		}
		if failed > 0 {
			if logged {
				s.log.Warnf("control socket %s: accepting again after %d failed accepts", s.name, failed+unlogged)
				unlogged = 0
			} else {
				unlogged += failed
			}
			failed, backoff, logged = 0, 0, false
		}
		slot, ok := s.slots.admit(conn)
		if !ok {
			refuse(conn)
			continue
		}
		guard.Go("control connection", func() {
			defer s.slots.release(slot)
			s.serveConn(slot)
		})
	}
}

// slots admits connections up to a limit (see maxConns).
type slots struct {
	mu      sync.Mutex
	size    int
	free    int
	reading list.List // of *connSlot still reading their request, oldest first
	closed  bool
}

// connSlot is one admitted connection's place.
type connSlot struct {
	conn     *net.UnixConn
	admitted time.Time
	got      atomic.Int64  // bytes of the request read so far
	elem     *list.Element // in slots.reading while it reads its request
	idle     bool          // answered early, only waiting for the client to close
	gone     bool          // released, or evicted and its place given away
}

func newSlots(n int) *slots { return &slots{size: n, free: n} }

// admit gives conn a slot, evicting a reading connection if every slot is
// taken; false when none can be evicted.
func (s *slots) admit(conn *net.UnixConn) (*connSlot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, false
	case s.free > 0:
		s.free--
	case !s.evictLocked():
		return nil, false
	}
	slot := &connSlot{conn: conn, admitted: time.Now()}
	slot.elem = s.reading.PushBack(slot)
	return slot, true
}

// evictLocked closes a reading connection, and the caller has its slot.
// First choice is the oldest that is idle: it has sent nothing (and
// nothing waits in its socket: an operator's request that arrived before
// its goroutine read it is not idle), or it has its answer. Else the
// oldest that has been sending its request for longer than slowRequest.
// A client that is sending its request briskly is never evicted.
func (s *slots) evictLocked() bool {
	var slow *list.Element
	for e := s.reading.Front(); e != nil; e = e.Next() {
		c := e.Value.(*connSlot)
		if c.idle || (c.got.Load() == 0 && !inputWaiting(c.conn)) {
			s.evictElem(e)
			return true
		}
		if slow == nil && time.Since(c.admitted) > slowRequest {
			slow = e
		}
	}
	if slow == nil {
		return false
	}
	s.evictElem(slow)
	return true
}

func (s *slots) evictElem(e *list.Element) {
	old := s.reading.Remove(e).(*connSlot)
	old.elem, old.gone = nil, true
	old.conn.Close() // its goroutine's read fails at once and it ends
}

// inputWaiting reports whether conn has bytes queued that nobody has read.
func inputWaiting(conn *net.UnixConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	raw.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n > 0
}

// evictOne closes a reading connection (as evictLocked chooses) to free
// its fd.
func (s *slots) evictOne() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.evictLocked() {
		return false
	}
	s.free++
	return true
}

// answering marks slot's request as complete: it can no longer be evicted.
// False if it was evicted meanwhile (its connection is closed).
func (s *slots) answering(slot *connSlot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot.gone {
		return false
	}
	s.reading.Remove(slot.elem)
	slot.elem = nil
	return true
}

// lingering marks a reading slot as answered: the first to make room.
func (s *slots) lingering(slot *connSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slot.idle = true
}

// release gives slot's place back, unless an eviction gave it away.
func (s *slots) release(slot *connSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slot.gone {
		return
	}
	if slot.elem != nil {
		s.reading.Remove(slot.elem)
	}
	slot.elem, slot.gone = nil, true
	s.free++
}

// counts is how many slots are taken and how many of them still read.
func (s *slots) counts() (taken, reading int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size - s.free, s.reading.Len()
}

// closeReading admits nobody more and closes the connections still reading.
func (s *slots) closeReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for e := s.reading.Front(); e != nil; e = s.reading.Front() {
		s.evictElem(e)
		s.free++
	}
}

// refuse answers 503 without holding up the accept loop: the answer fits
// in a fresh socket's buffer, and what the client already sent is
// discarded, since closing with input unread resets the connection, which
// can lose the answer.
func refuse(conn *net.UnixConn) {
	conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	writeResponse(conn, errorResponse(503, "every connection slot is answering a request; try again"))
	if raw, err := conn.SyscallConn(); err == nil {
		buf := make([]byte, 4096)
		raw.Read(func(fd uintptr) bool {
			// The socket is non-blocking: this reads only what is queued.
			for range 16 {
				if n, err := unix.Read(int(fd), buf); n <= 0 || err != nil {
					break
				}
			}
			return true
		})
	}
	conn.Close()
}

// serveConn answers the one request of a connection.
func (s *server) serveConn(slot *connSlot) {
	conn := slot.conn
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(headTimeout))
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if uid, ok := peerUID(conn); !ok || (uid != 0 && uid != uint32(os.Getuid())) {
		writeResponse(conn, errorResponse(403, "only root and tend's own user may use this socket"))
		s.slots.lingering(slot)
		linger(conn)
		return
	}
	beforeBody := func(sendContinue bool) error {
		conn.SetReadDeadline(time.Now().Add(bodyTimeout))
		if !sendContinue {
			return nil
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := io.WriteString(conn, continueLine)
		return err
	}
	req, err := readRequest(bufio.NewReaderSize(countingReader{conn, &slot.got}, 4096), beforeBody)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) {
			conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			writeResponse(conn, errorResponse(he.Code, he.Msg))
			s.slots.lingering(slot)
			linger(conn)
		}
		return // the client went away, timed out before a byte, or was evicted
	}
	s.answering.add()
	answered := sync.OnceFunc(s.answering.done)
	defer answered()
	if !s.slots.answering(slot) {
		return // evicted as the request completed: its connection is closed
	}
	resp := s.h.Handle(req)
	if resp.Stream != nil && !s.streams.add(conn) {
		resp.Stream(func([]byte) error { return net.ErrClosed }, closedChan) // let it unsubscribe
		resp = errorResponse(503, fmt.Sprintf("%d streams are open already; close one and try again", maxStreams))
	}
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	err = writeResponse(conn, resp)
	if resp.Stream == nil {
		return
	}
	defer s.streams.remove(conn)
	if err != nil {
		return
	}
	// The head is out: the request is answered, and a stream is not an
	// operator's slot to hold.
	answered()
	s.slots.release(slot)
	s.stream(conn, resp.Stream)
}

// maxStreams bounds the logs and events clients followed at once.
const maxStreams = 64

// streamWriteTimeout drops a stream client that stops reading: its
// socket buffer fills and a write waits this long.
const streamWriteTimeout = 10 * time.Second

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// stream runs a streamed answer until it ends, the client goes away (its
// side of the connection reads EOF) or tend exits (closeAll closes conn).
func (s *server) stream(conn *net.UnixConn, run func(send func([]byte) error, stop <-chan struct{})) {
	stop := make(chan struct{})
	conn.SetReadDeadline(time.Time{})
	guard.Go("control stream watch", func() {
		// Ends when the client closes, sends more than it may, or conn
		// is closed.
		io.Copy(io.Discard, io.LimitReader(conn, maxHeader))
		close(stop)
	})
	run(func(p []byte) error {
		conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return writeChunk(conn, p)
	}, stop)
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	writeChunk(conn, nil)
}

// streamSet is the connections that stream; closeAll ends them at exit.
type streamSet struct {
	mu     sync.Mutex
	conns  map[*net.UnixConn]bool
	closed bool
}

func (s *streamSet) add(c *net.UnixConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.conns) >= maxStreams {
		return false
	}
	if s.conns == nil {
		s.conns = map[*net.UnixConn]bool{}
	}
	s.conns[c] = true
	return true
}

func (s *streamSet) remove(c *net.UnixConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *streamSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
}

// countingReader counts the bytes a connection has sent, for evictLocked.
type countingReader struct {
	r   io.Reader
	got *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.got.Add(int64(n))
	return n, err
}

// linger lets the client read an answer given before its whole request
// was read: closing with input unread would reset the connection and could
// lose the answer. Bounded in bytes and time, and the slot is the first a
// newcomer may take.
func linger(conn *net.UnixConn) {
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, io.LimitReader(conn, maxHeader+2*maxBody))
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
	a := api{h}
	if len(parts) == 1 && parts[0] == "metrics" {
		return route(req, "GET", a.metrics)
	}
	if len(parts) < 2 || parts[0] != "v1" {
		return errorResponse(404, "no such resource: "+req.Path)
	}
	switch {
	case len(parts) == 2 && parts[1] == "logs":
		return route(req, "GET", func() Response { return a.logs(req, "") })
	case len(parts) == 4 && parts[1] == "services" && parts[3] == "logs":
		return route(req, "GET", func() Response { return a.logs(req, parts[2]) })
	case len(parts) == 2 && parts[1] == "events":
		return route(req, "GET", a.events)
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
