package supervise

import (
	"errors"
	"sync"
	"time"
)

// How other goroutines talk to the supervisor: each posts a closure to its
// inbox, and the supervisor's goroutine runs it, so nothing shares its
// state. A closure that answers for a run, a timer or a probe first checks
// that what it answers for is still current: the record it captured, and
// the run or generation.

// call runs fn on the supervisor's goroutine and returns its result. The
// result travels through a channel, so a caller that gave up waiting never
// reads what fn is still writing.
func call[T any](s *Supervisor, fn func() T) (T, error) { return callWithin(s, requestWait, fn) }

// callWithin is call with a bound of its own on the wait.
func callWithin[T any](s *Supervisor, wait time.Duration, fn func() T) (T, error) {
	ch := make(chan T, 1)
	s.inbox.post(func() { ch <- fn() })
	t := time.NewTimer(wait)
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
	items []func()
	wake  chan struct{}
}

func (q *inbox) init() { q.wake = make(chan struct{}, 1) }

func (q *inbox) post(fn func()) {
	q.mu.Lock()
	q.items = append(q.items, fn)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *inbox) drain() []func() {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
