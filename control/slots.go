package control

import (
	"container/list"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
)

// maxConns bounds the connections the control socket serves at once (the
// TCP listeners have MetricsSlots and HealthSlots, under the same policy),
// so that no number of clients can take more than that many fds and
// goroutines from tend. A connection's slot is "reading" until its whole request has
// arrived, and when every slot is taken a reading one is closed to make
// room for the newcomer (see evictLocked for which). So clients that
// connect and send nothing, however many and however often they come
// back, cannot keep an operator (or a scraper) out: an operator's client
// sends its request as it connects.
// Only when every slot holds a request being answered, or one still
// arriving briskly, is a newcomer refused with a 503. (A separate reserve
// of slots would not do: idle clients would fill the reserve too.)
const maxConns = 32

// slowRequest is how long a client that is sending its request keeps its
// slot against newcomers: far more than a program needs, less than a
// deliberately slow client would like.
const slowRequest = 500 * time.Millisecond

// slotConn is a connection that slots can hold: the control socket's
// *net.UnixConn or a TCP listener's *net.TCPConn. Both listeners face the
// same clients that connect and send nothing, so they share one policy;
// what it needs of a connection is its fd (for SIOCINQ, which unix and TCP
// stream sockets both answer) and its write side's close (for linger).
type slotConn interface {
	net.Conn
	SyscallConn() (syscall.RawConn, error)
	CloseWrite() error
}

// slots admits connections up to a limit (see maxConns).
type slots[C slotConn] struct {
	mu      sync.Mutex
	size    int
	free    int
	reading list.List // of *connSlot[C] still reading their request, oldest first
	closed  bool
}

// connSlot is one admitted connection's place.
type connSlot[C slotConn] struct {
	conn     C
	admitted time.Time
	got      atomic.Int64  // bytes of the request read so far
	elem     *list.Element // in slots.reading while it reads its request
	idle     bool          // answered early, only waiting for the client to close
	gone     bool          // released, or evicted and its place given away
}

func newSlots[C slotConn](n int) *slots[C] { return &slots[C]{size: n, free: n} }

// take is what both listeners do with an accepted connection: a slot and
// a goroutine named what that serves it and then gives the slot back, or a
// 503 when none can be had. It never waits, and the accept loop goes on
// (true).
func (s *slots[C]) take(conn C, what string, serve func(*connSlot[C])) bool {
	slot, ok := s.admit(conn)
	if !ok {
		refuse(conn)
		return true
	}
	guard.Go(what, func() {
		defer s.release(slot)
		serve(slot)
	})
	return true
}

// admit gives conn a slot, evicting a reading connection if every slot is
// taken; false when none can be evicted.
func (s *slots[C]) admit(conn C) (*connSlot[C], bool) {
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
	slot := &connSlot[C]{conn: conn, admitted: time.Now()}
	slot.elem = s.reading.PushBack(slot)
	return slot, true
}

// evictLocked closes a reading connection, and the caller has its slot.
// First choice is the oldest that is idle: it has sent nothing (and
// nothing waits in its socket: an operator's request that arrived before
// its goroutine read it is not idle), or it has its answer. Else the
// oldest that has been sending its request for longer than slowRequest.
// A client that is sending its request briskly is never evicted.
func (s *slots[C]) evictLocked() bool {
	var slow *list.Element
	for e := s.reading.Front(); e != nil; e = e.Next() {
		c := e.Value.(*connSlot[C])
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

func (s *slots[C]) evictElem(e *list.Element) {
	old := s.reading.Remove(e).(*connSlot[C])
	old.elem, old.gone = nil, true
	old.conn.Close() // its goroutine's read fails at once and it ends
}

// inputWaiting reports whether conn has bytes queued that nobody has read.
// SIOCINQ is the unread bytes of a unix stream socket, and of an
// established TCP socket too.
func inputWaiting(conn slotConn) bool {
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
func (s *slots[C]) evictOne() bool {
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
func (s *slots[C]) answering(slot *connSlot[C]) bool {
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
func (s *slots[C]) lingering(slot *connSlot[C]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slot.idle = true
}

// release gives slot's place back, unless an eviction gave it away.
func (s *slots[C]) release(slot *connSlot[C]) {
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

// closeReading admits nobody more and closes the connections still reading.
func (s *slots[C]) closeReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for e := s.reading.Front(); e != nil; e = s.reading.Front() {
		s.evictElem(e)
		s.free++
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
