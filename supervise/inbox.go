package supervise

import (
	"errors"
	"sync"
	"time"
)

// How other goroutines talk to the supervisor: everything is posted to its
// inbox and handled on its own goroutine, so nothing shares its state.

// Do runs fn on the supervisor's goroutine and waits for it: the way tests
// and the control API read and change state without sharing it. It reports
// false when the supervisor did not run fn.
func (s *Supervisor) Do(fn func()) bool {
	_, err := call(s, func() struct{} { fn(); return struct{}{} })
	return err == nil
}

// call runs fn on the supervisor's goroutine and returns its result. The
// result travels through a channel, so a caller that gave up waiting never
// reads what fn is still writing.
func call[T any](s *Supervisor, fn func() T) (T, error) {
	ch := make(chan T, 1)
	s.inbox.post(request{fn: func() { ch <- fn() }})
	t := time.NewTimer(requestWait)
	defer t.Stop()
	var zero T
	select {
	case v := <-ch:
		return v, nil
	case <-s.done:
		select {
		case v := <-ch:
			return v, nil
		default:
			return zero, ErrFinished
		}
	case <-t.C:
		return zero, errBusy
	}
}

// requestWait bounds how long a request waits for the supervisor; it only
// runs out when the supervisor's goroutine is stuck, which is a bug.
const requestWait = 10 * time.Second

var (
	errBusy = errors.New("the supervisor did not answer in time")
	// ErrFinished answers a request that came after the supervisor ended.
	ErrFinished = errors.New("tend has shut down")
)

// inbox is the supervisor's queue. Posting never blocks, so timers, exits
// and requests can never stall each other or the reaper. It is unbounded
// as a queue, but what can be in it is bounded by construction: per
// service at most one exit, one timer, one probe result or due probe, one
// readiness deadline and one notify wake-up (notify.go coalesces
// datagrams); per control connection one request (connections are
// bounded); one reload result; per main program one exit.
type inbox struct {
	mu    sync.Mutex
	items []any
	wake  chan struct{}
}

func (q *inbox) init() { q.wake = make(chan struct{}, 1) }

func (q *inbox) post(e any) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *inbox) drain() []any {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
