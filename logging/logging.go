// Package logging is the output of tend's own log lines. A line is queued
// and written by one goroutine, so the loops that log (signals, exits,
// timers) never wait on a slow or stalled reader. When the queue is full,
// or the output is gone (EPIPE, EBADF), lines are dropped and counted; the
// count is written as a line of its own once the output takes lines again.
package logging

import (
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/tend-init/tend/guard"
)

// Defaults bound the queue: a burst of this many lines (or bytes) can wait
// for a slow reader; beyond that, lines are dropped rather than held.
const (
	DefaultMaxLines = 1024
	DefaultMaxBytes = 256 << 10
)

// pipeBuf is the most the kernel writes to a pipe in one piece: a batch of
// lines up to this size cannot be interleaved with another writer's lines
// (service output goes to the same stderr).
const pipeBuf = 4096

// Options tune a Writer; zero values take the defaults.
type Options struct {
	MaxLines int
	MaxBytes int
	// Notice formats the line that reports n dropped lines; nil gives
	// "tend: n log lines dropped".
	Notice func(n uint64) []byte
}

// item is one queued line, or (dropped > 0) the report of lines dropped
// just before it, formatted only when it is written.
type item struct {
	line    []byte
	dropped uint64
}

// Writer is an io.Writer whose Write never blocks and never fails.
type Writer struct {
	out    io.Writer
	max    Options
	notice func(n uint64) []byte

	mu      sync.Mutex
	queue   []item
	bytes   int
	dropped uint64 // dropped for a full queue since the last report was queued
	total   uint64 // every line dropped, for Stats
	queued  uint64 // lines and reports queued so far
	handled uint64 // of those, written or given up by the writer
	waiters []waiter
	closed  bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
}

type waiter struct {
	upTo uint64
	ch   chan struct{}
}

// New starts the writer goroutine for out. out may block (a stalled pipe):
// only the writer goroutine waits on it.
func New(out io.Writer, o Options) *Writer {
	if o.MaxLines <= 0 {
		o.MaxLines = DefaultMaxLines
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	notice := o.Notice
	if notice == nil {
		notice = plainNotice
	}
	w := &Writer{
		out: out, max: o, notice: notice,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	guard.Go("log writer", w.run)
	return w
}

func plainNotice(n uint64) []byte {
	return []byte("tend: " + strconv.FormatUint(n, 10) + " log lines dropped\n")
}

// SetNotice changes how the report of dropped lines is formatted (tend's
// log format is known only once the config is read).
func (w *Writer) SetNotice(f func(n uint64) []byte) {
	w.mu.Lock()
	w.notice = f
	w.mu.Unlock()
}

// Write queues a copy of p (one log line) and returns at once. A line that
// does not fit is dropped and counted; the error is always nil, so the
// caller (logrus) never reports a failure of its own.
func (w *Writer) Write(p []byte) (int, error) {
	n := len(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.total++
		return n, nil
	}
	// A line larger than the whole byte budget still goes through when the
	// queue is empty: its size is the caller's bound, not the queue's.
	full := len(w.queue) >= w.max.MaxLines || (len(w.queue) > 0 && w.bytes+n > w.max.MaxBytes)
	if full {
		w.dropped++
		w.total++
		return n, nil
	}
	if w.dropped > 0 {
		// The report goes where the gap is: after the lines queued before
		// the drops, before this one.
		w.queue = append(w.queue, item{dropped: w.dropped})
		w.queued++
		w.dropped = 0
	}
	w.queue = append(w.queue, item{line: append([]byte(nil), p...)})
	w.bytes += n
	w.queued++
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return n, nil
}

// Flush waits, at most limit, until every line queued before the call has
// been written (or given up because the output is gone). It reports
// whether that happened in time; on the exit path a stalled output then
// costs limit, not forever.
func (w *Writer) Flush(limit time.Duration) bool {
	w.mu.Lock()
	if w.handled >= w.queued && w.dropped == 0 {
		w.mu.Unlock()
		return true
	}
	if w.dropped > 0 && !w.closed {
		// Lines dropped with nothing queued after them: queue the report
		// now, so that the exit does not hide them.
		w.queue = append(w.queue, item{dropped: w.dropped})
		w.queued++
		w.dropped = 0
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	ch := make(chan struct{})
	w.waiters = append(w.waiters, waiter{upTo: w.queued, ch: ch})
	w.mu.Unlock()
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-w.done:
		return false
	case <-t.C:
		return false
	}
}

// Close flushes (at most limit) and stops the writer goroutine; later
// lines are dropped. It reports whether the flush completed.
func (w *Writer) Close(limit time.Duration) bool {
	ok := w.Flush(limit)
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
	}
	w.mu.Unlock()
	if ok {
		<-w.done
	}
	return ok
}

func (w *Writer) run() {
	defer close(w.done)
	var lost uint64 // lines whose write failed since the last one that worked
	var buf []byte
	for {
		select {
		case <-w.wake:
		case <-w.stop:
			return
		}
		for {
			batch, notice := w.take()
			if len(batch) == 0 {
				break
			}
			buf = buf[:0]
			if lost > 0 {
				buf = append(buf, notice(lost)...)
			}
			var lines, reported uint64
			for _, it := range batch {
				if it.dropped > 0 {
					buf = append(buf, notice(it.dropped)...)
					reported += it.dropped
				} else {
					buf = append(buf, it.line...)
					lines++
				}
			}
			var failed uint64
			if _, err := w.out.Write(buf); err != nil {
				// Gone (EPIPE, EBADF...): these lines are lost, and so is
				// any report in the batch; the next write that works says
				// how many.
				failed = lines
				lost += lines + reported
			} else {
				lost = 0
			}
			if cap(buf) > 4*pipeBuf {
				buf = nil // one long line passed; do not keep its buffer
			}
			w.finish(len(batch), failed)
		}
	}
}

// take removes the next batch: whole lines up to pipeBuf bytes, or one
// longer line alone.
func (w *Writer) take() ([]item, func(uint64) []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, size := 0, 0
	for n < len(w.queue) {
		l := len(w.queue[n].line)
		if n > 0 && size+l > pipeBuf {
			break
		}
		size += l
		n++
	}
	batch := make([]item, n)
	copy(batch, w.queue[:n])
	w.queue = append(w.queue[:0], w.queue[n:]...)
	w.bytes -= size
	return batch, w.notice
}

// finish records n items as handled, failed lines among them as dropped,
// and releases the Flush calls waiting for them.
func (w *Writer) finish(n int, failed uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.handled += uint64(n)
	w.total += failed
	kept := w.waiters[:0]
	for _, wt := range w.waiters {
		if w.handled >= wt.upTo {
			close(wt.ch)
		} else {
			kept = append(kept, wt)
		}
	}
	w.waiters = kept
}
