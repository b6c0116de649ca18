package supervise

import (
	"errors"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/tend-init/tend/guard"
)

// outQueueBytes bounds the formatted lines queued for one of tend's
// outputs: what a slow reader may cost tend in memory, per output. A var so
// that tests can shorten it.
var outQueueBytes = 256 << 10

// stallLimit is how long a pump of an ended run (no process of it is left)
// waits for room in a queue that makes no progress before it drops a
// line. A reader that pauses for a second or two (a busy log collector, a
// CI runner's pipe) is slow, not gone: its lines are kept. At most one
// ended pump per service and output waits at a time, so a reader that has
// stopped for good holds that many pipes for this long. A var so that tests
// can shorten it.
var stallLimit = 5 * time.Second

// OutputStall is how long tend, once its services are gone, waits for an
// output that makes no progress before it exits without the lines still
// queued (Sink.Wait): the same limit as a dead run's pump's.
const OutputStall = 5 * time.Second

// writeBatch is the most the writer coalesces from several queued chunks
// into one write.
const writeBatch = MaxLine

// outQueue feeds one of tend's outputs (stdout or stderr, or both when they
// are the same file) through a writer goroutine, so that no pump and none
// of tend's loops ever waits on a write. A chunk is whole formatted lines;
// chunks are written in the order they were queued, each whole, so lines
// are never torn or interleaved.
//
// The queue holds at most outQueueBytes (or one chunk, however large,
// when it is empty). A pump whose chunk does not fit waits in line for
// room: its service's pipe fills and the service slows, and memory stays
// bounded. Once its run has ended, a pump waits only while the output makes
// progress, and only one ended pump per service waits at a time, so a
// stalled reader never holds the descriptors and goroutines of dead runs.
type outQueue struct {
	w   io.Writer
	max int
	wg  *sync.WaitGroup // the Sink's: a running writer counts as output not yet out

	mu           sync.Mutex
	chunks       [][]byte  // queued, oldest first
	size         int       // bytes queued and being written
	waiters      []*waiter // pumps waiting for room, first come first served
	endedWaiting map[string]bool
	writing      bool // the writer goroutine runs
	broken       bool // the reader is gone (EPIPE): lines are discarded
	progress     time.Time
	batch        []byte // the writer's coalescing buffer, while it runs
}

// A waiter is a pump's chunk waiting for room.
type waiter struct {
	buf     []byte
	service string
	ended   bool          // its run has ended: counted in endedWaiting
	done    bool          // taken into the queue or discarded; admitted is closed
	result  putResult     // set with done
	admit   chan struct{} // closed when done
}

type putResult int

const (
	queued    putResult = iota // the chunk will be written
	discarded                  // the reader is gone; the lines are not counted as dropped
	dropped                    // the output is stalled and the run ended: counted
)

func newOutQueue(w io.Writer, wg *sync.WaitGroup) *outQueue {
	return &outQueue{w: w, max: outQueueBytes, wg: wg, endedWaiting: map[string]bool{}}
}

// put hands buf (whole formatted lines) to the queue, which owns it from
// then on. It waits for room as long as the run has not ended (end not
// closed; a nil end never closes), and after that while the output makes
// progress. With dropAtOnce it never waits: what does not fit is dropped.
func (q *outQueue) put(service string, buf []byte, end <-chan struct{}, dropAtOnce bool) putResult {
	q.mu.Lock()
	if q.broken {
		q.mu.Unlock()
		recycle(buf)
		return discarded
	}
	if len(q.waiters) == 0 && q.fits(len(buf)) {
		q.push(buf)
		q.mu.Unlock()
		return queued
	}
	ended := hasEnded(end)
	if dropAtOnce || ended && q.endedWaiting[service] {
		q.mu.Unlock()
		recycle(buf)
		return dropped
	}
	w := &waiter{buf: buf, service: service, admit: make(chan struct{})}
	if ended {
		w.ended, q.endedWaiting[service] = true, true
	}
	q.waiters = append(q.waiters, w)
	q.mu.Unlock()
	return q.wait(w, end)
}

func (q *outQueue) wait(w *waiter, end <-chan struct{}) putResult {
	var (
		stall     *time.Timer
		stalled   <-chan time.Time
		stallFrom time.Time
	)
	startStall := func() {
		stallFrom = time.Now()
		stall = time.NewTimer(stallLimit)
		stalled = stall.C
	}
	if w.ended {
		startStall()
		end = nil
	}
	defer func() {
		if stall != nil {
			stall.Stop()
		}
	}()
	for {
		select {
		case <-w.admit:
			return w.result
		case <-end:
			end = nil
			q.mu.Lock()
			switch {
			case w.done: // <-w.admit is ready
			case q.endedWaiting[w.service]: // an older run of the service waits already
				q.remove(w)
				q.mu.Unlock()
				recycle(w.buf)
				return dropped
			default:
				w.ended, q.endedWaiting[w.service] = true, true
				startStall()
			}
			q.mu.Unlock()
		case <-stalled:
			q.mu.Lock()
			if w.done {
				q.mu.Unlock()
				continue
			}
			from := stallFrom
			if q.progress.After(from) {
				from = q.progress
			}
			if left := stallLimit - time.Since(from); left > 0 {
				q.mu.Unlock()
				stall.Reset(left) // the output moved: wait on
				continue
			}
			q.remove(w)
			q.admitWaiters() // the ones behind may fit
			q.mu.Unlock()
			recycle(w.buf)
			return dropped
		}
	}
}

// lastProgress is when the last write completed (zero before the first).
func (q *outQueue) lastProgress() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.progress
}

// fits tells whether n more bytes may be queued.
func (q *outQueue) fits(n int) bool { return q.size == 0 || q.size+n <= q.max }

// push queues buf and makes sure the writer runs.
func (q *outQueue) push(buf []byte) {
	q.chunks = append(q.chunks, buf)
	q.size += len(buf)
	if !q.writing {
		q.writing = true
		q.wg.Add(1) // a pump holds the Sink's count: never from zero
		guard.Go("output writer", q.run)
	}
}

// remove takes a waiter that gave up out of line.
func (q *outQueue) remove(w *waiter) {
	for i, o := range q.waiters {
		if o == w {
			last := len(q.waiters) - 1
			copy(q.waiters[i:], q.waiters[i+1:])
			q.waiters[last] = nil
			q.waiters = q.waiters[:last]
			break
		}
	}
	if w.ended {
		delete(q.endedWaiting, w.service)
	}
}

// admitWaiters moves waiters into the queue, in order, while they fit.
func (q *outQueue) admitWaiters() {
	for len(q.waiters) > 0 {
		w := q.waiters[0]
		if q.broken {
			recycle(w.buf)
			w.result = discarded
		} else if q.fits(len(w.buf)) {
			q.push(w.buf)
			w.result = queued
		} else {
			return
		}
		w.buf, w.done = nil, true
		close(w.admit)
		if w.ended {
			delete(q.endedWaiting, w.service)
		}
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
	}
	q.waiters = nil // empty: let the array go
}

// run writes queued chunks until the queue is empty, then ends: an idle
// output has no goroutine.
func (q *outQueue) run() {
	normal := false
	defer func() {
		if !normal { // a panicking writer: treat the output as gone
			q.mu.Lock()
			q.writing, q.broken = false, true
			q.drop()
			q.mu.Unlock()
			q.wg.Done()
		}
	}()
	var (
		out     []byte   // what this round writes
		written [][]byte // the chunks in it, to give back
	)
	for {
		q.mu.Lock()
		if out != nil {
			q.size -= len(out)
			q.progress = time.Now()
		}
		if q.broken {
			q.drop()
		}
		q.admitWaiters()
		if len(q.chunks) == 0 {
			q.chunks, q.writing, q.batch = nil, false, nil
			q.mu.Unlock()
			normal = true
			q.wg.Done()
			return
		}
		out, written = q.take(written[:0])
		q.mu.Unlock()

		_, err := q.w.Write(out)
		for i, b := range written {
			recycle(b)
			written[i] = nil
		}
		// A closed reader (EPIPE) must not stop tend, nor block the
		// service: keep draining its pipes and drop the lines.
		if errors.Is(err, syscall.EPIPE) {
			q.mu.Lock()
			q.broken = true
			q.mu.Unlock()
		}
	}
}

// take removes the next chunks to write: one, or several small ones
// coalesced into one write of at most writeBatch bytes.
func (q *outQueue) take(written [][]byte) ([]byte, [][]byte) {
	first := q.chunks[0]
	n := 1
	total := len(first)
	for n < len(q.chunks) && total+len(q.chunks[n]) <= writeBatch {
		total += len(q.chunks[n])
		n++
	}
	written = append(written, q.chunks[:n]...)
	clear(q.chunks[:n])
	q.chunks = q.chunks[n:]
	if n == 1 {
		return first, written
	}
	if q.batch == nil {
		q.batch = make([]byte, 0, writeBatch)
	}
	out := q.batch[:0]
	for _, b := range written {
		out = append(out, b...)
	}
	return out, written
}

// drop discards everything queued and every waiter: the reader is gone.
func (q *outQueue) drop() {
	for _, b := range q.chunks {
		q.size -= len(b)
		recycle(b)
	}
	q.chunks = nil
	q.admitWaiters()
}

func hasEnded(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// recycle gives a formatted-lines buffer back to the pool, unless it grew
// big on a burst of long lines.
func recycle(b []byte) {
	if b != nil && cap(b) <= 2*MaxLine {
		b = b[:0]
		outBufs.Put(&b)
	}
}
