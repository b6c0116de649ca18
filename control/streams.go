package control

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/httpwire"
)

// Streams: the logs and events that a client follows, sent as a chunked
// body for as long as it reads them.

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
		io.Copy(io.Discard, io.LimitReader(conn, httpwire.MaxHeader))
		close(stop)
	})
	run(func(p []byte) error {
		conn.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		return httpwire.WriteChunk(conn, p)
	}, stop)
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	httpwire.WriteChunk(conn, nil)
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
