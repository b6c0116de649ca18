// Package control serves tend's operator interface, the control API (SPEC
// section 7, package api), on a unix socket: the socket and who may use
// it, the accept loop (shared with the TCP listeners of health_listen and
// metrics_listen, tcp_listen.go), the connection slots (slots.go), the
// answers in flight, and the logs and events streams (streams.go). The
// HTTP on the wire is package httpwire; `tend ctl` is package ctl.
package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/httpwire"
)

// Handler answers a request: Serve has checked who asks and read the
// request, and writes the answer. The control API (api.Handler) is one.
type Handler interface {
	Handle(*httpwire.Request) httpwire.Response
}

// Limits that keep a client from holding tend's attention (those on the
// size of a request are httpwire.MaxHeader and MaxBody). The head must
// arrive within headTimeout of the accept: an operator's client sends it
// at once, and a short wait frees an idle client's slot early even when
// nobody else needs it.
const (
	headTimeout   = 2 * time.Second
	bodyTimeout   = 10 * time.Second // after the head
	writeTimeout  = 10 * time.Second
	lingerTimeout = time.Second // for the client to read an early answer
)

// Serve listens on path (mode 0600) and serves h, the API, until ctx ends.
// Connections from a uid other than root's or tend's own are refused.
//
// The function it returns waits, up to limit, for the answers of requests
// already taken: every request tend accepted is answered, also the one
// (tend ctl shutdown, or a stop after which tend ends) that makes tend exit.
func Serve(ctx context.Context, path string, h Handler, log *logrus.Logger) (answered func(limit time.Duration) bool, err error) {
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
	h         Handler
	slots     *slots[*net.UnixConn]
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

// acceptor is the listener: a *net.UnixListener, or a test's wrapper.
type acceptor interface {
	AcceptUnix() (*net.UnixConn, error)
	Close() error
}

// serve runs the accept loop on l until ctx ends, then closes l, removes
// the socket file and closes the connections still sending their request
// (those being answered are answered).
func serve(ctx context.Context, l acceptor, path string, h Handler, log *logrus.Logger) *server {
	s := &server{h: h, slots: newSlots[*net.UnixConn](maxConns)}
	guard.Go("control socket", func() {
		acceptLoop(ctx, "control socket "+path, log, l.AcceptUnix, s.slots.evictOne, s.take)
	})
	guard.Go("control socket closer", func() {
		<-ctx.Done()
		l.Close()
		os.Remove(path)
		s.slots.closeReading()
		s.streams.closeAll()
	})
	return s
}

// take gives an accepted connection a slot and a goroutine, or refuses it.
func (s *server) take(conn *net.UnixConn) bool {
	return s.slots.take(conn, "control connection", s.serveConn)
}

// refuse answers 503 without holding up the accept loop: the answer fits
// in a fresh socket's buffer, and what the client already sent is
// discarded, since closing with input unread resets the connection, which
// can lose the answer.
func refuse(conn slotConn) {
	conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	httpwire.WriteResponse(conn, httpwire.ErrorResponse(503, "every connection slot is answering a request; try again"))
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
func (s *server) serveConn(slot *connSlot[*net.UnixConn]) {
	conn := slot.conn
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(headTimeout))
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if uid, ok := peerUID(conn); !ok || (uid != 0 && uid != uint32(os.Getuid())) {
		httpwire.WriteResponse(conn, httpwire.ErrorResponse(403, "only root and tend's own user may use this socket"))
		s.slots.lingering(slot)
		linger(conn)
		return
	}
	req := readRequest(s.slots, slot)
	if req == nil {
		return // answered as the grammar demands, or the client is gone
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
		resp = httpwire.ErrorResponse(503, fmt.Sprintf("%d streams are open already; close one and try again", maxStreams))
	}
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := httpwire.WriteResponse(conn, resp)
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

// readRequest reads the request of slot's connection, whose head deadline
// the caller set at the accept; a body gets bodyTimeout after the head. A
// request that breaks the grammar is answered here, and while its client
// reads that answer its slot is the first a newcomer may take. nil then,
// and when the client went away, timed out before a byte, or was evicted.
func readRequest[C slotConn](s *slots[C], slot *connSlot[C]) *httpwire.Request {
	conn := slot.conn
	beforeBody := func(sendContinue bool) error {
		conn.SetReadDeadline(time.Now().Add(bodyTimeout))
		if !sendContinue {
			return nil
		}
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		_, err := io.WriteString(conn, httpwire.ContinueLine)
		return err
	}
	req, err := httpwire.ReadRequest(bufio.NewReaderSize(countingReader{conn, &slot.got}, 4096), beforeBody)
	if err != nil {
		var he *httpwire.Error
		if errors.As(err, &he) {
			conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			httpwire.WriteResponse(conn, httpwire.ErrorResponse(he.Code, he.Msg))
			s.lingering(slot)
			linger(conn)
		}
		return nil
	}
	return req
}

// linger lets the client read an answer given before its whole request
// was read: closing with input unread would reset the connection and could
// lose the answer. Bounded in bytes and time, and the slot is the first a
// newcomer may take.
func linger(conn slotConn) {
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, io.LimitReader(conn, httpwire.MaxHeader+2*httpwire.MaxBody))
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
