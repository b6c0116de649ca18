package supervise

import (
	"container/heap"
	"encoding/binary"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// LogLine is one line a service wrote, as `tend ctl logs` shows it.
type LogLine struct {
	// Seq orders lines: it is given as a line enters the ring, from one
	// counter for every service, so it holds when the wall clock jumps.
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Stream  string    `json:"stream"`
	Line    string    `json:"line"`
}

// Logs keeps each service's recent output in a ring of at most a fixed
// number of bytes, and hands new lines to followers. A follower that does
// not keep up is dropped (see Follower), never waited for: the pumps that
// feed Logs must not slow down for a client. Lines are ordered by their
// Seq, never by time: the wall clock may go back.
type Logs struct {
	mu        sync.Mutex
	max       int    // bytes of ring per service
	seq       uint64 // the last Seq given
	rings     map[string]*ring
	followers map[*Follower]bool
}

// DefaultLogBytes is each service's ring: about 80 lines of 80 characters,
// 8 MiB for 1,000 services whose rings are all full (their memory is
// outside Go's heap, so it costs that and no more).
const DefaultLogBytes = 8 << 10

// MinLogBytes is the smallest ring: one record of a whole kept line.
const MinLogBytes = 4 << 10

// followLines and followBytes bound what a follower has pending, added
// and not yet taken: one more line past either and it is dropped. Its
// reader takes everything pending at once, so one that keeps up need only
// be scheduled now and then: a pump adds a whole read (4 KiB, up to 4,096
// lines) without a pause and reads again at once, and 65,536 lines are 16
// such reads of the shortest lines, 4 MiB 1,024 reads of any. The bound is
// for memory: a follower holds at most 65,536 LogLines of 80 bytes (5 MiB;
// its slice never grows past that) and 4 MiB of their text (one string a
// line, shared by every follower that holds it), and its reader at most
// as much again in the batch it is writing: some 18 MiB at worst. Only
// the control socket makes followers, one a connection, and it serves at
// most maxConns = 32 connections at once (control/slots.go). A client
// that stalls is dropped once past the bound, which lets its lines go, and
// its batch goes when its write times out.
const (
	followLines = 64 << 10
	followBytes = 4 << 20
)

// NewLogs keeps maxBytes of output per service (DefaultLogBytes if <= 0).
func NewLogs(maxBytes int) *Logs {
	if maxBytes <= 0 {
		maxBytes = DefaultLogBytes
	}
	maxBytes = max(maxBytes, MinLogBytes)
	return &Logs{max: maxBytes, rings: map[string]*ring{}, followers: map[*Follower]bool{}}
}

// Follower is one reader of new lines, made by Logs.Follow. Its lines wait
// in a slice, not a channel: a channel hands them over one at a time,
// each a send the reader must be scheduled for, so a burst of a few
// thousand lines overran a reader that was not slow at all. Here the
// reader takes them all in one go.
type Follower struct {
	logs    *Logs
	service string        // "" follows every service
	wake    chan struct{} // one slot: lines wait, or it was dropped
	// Under logs.mu:
	pending []LogLine // added, not taken yet, oldest first
	bytes   int       // of the lines' text in pending
	behind  int       // once dropped: how many lines it was behind
}

// Add records a line of service; it never blocks.
func (l *Logs) Add(service, stream string, at time.Time, line []byte) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.add(l.ringLocked(service), service, stream, at, line)
}

// writer is where the lines of one run of a service go: its pumps take it
// when they start and keep it, so a pump still reading after Forget (an
// orphan holds the pipe) cannot bring the forgotten ring back, and a
// service added again gets a ring of its own.
func (l *Logs) writer(service string) *logWriter {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return &logWriter{logs: l, service: service, r: l.ringLocked(service)}
}

// logWriter writes one service's lines into Logs; see Logs.writer.
type logWriter struct {
	logs    *Logs
	service string
	r       *ring
}

// add records a line, unless the service has been forgotten since the
// writer was taken; it never blocks.
func (w *logWriter) add(stream string, at time.Time, line []byte) {
	if w == nil {
		return
	}
	w.logs.mu.Lock()
	defer w.logs.mu.Unlock()
	if !w.r.forgotten {
		w.logs.add(w.r, w.service, stream, at, line)
	}
}

func (l *Logs) ringLocked(service string) *ring {
	r := l.rings[service]
	if r == nil {
		r = &ring{max: l.max}
		l.rings[service] = r
	}
	return r
}

// add gives the line its Seq, keeps it in r and hands it to followers.
func (l *Logs) add(r *ring, service, stream string, at time.Time, line []byte) {
	l.seq++
	r.add(l.seq, at, stream, line)
	if len(l.followers) == 0 {
		return
	}
	ll := LogLine{Seq: l.seq, Time: at, Service: service, Stream: stream, Line: string(line)}
	for f := range l.followers {
		if f.service == "" || f.service == service {
			f.addLocked(ll)
		}
	}
}

// addLocked queues a line for f, or drops f if it would go past its
// bound; either way its reader is woken, without waiting for it.
func (f *Follower) addLocked(ll LogLine) {
	switch {
	case len(f.pending) >= followLines || f.bytes+len(ll.Line) > followBytes:
		// Too slow: dropped. What it has is let go now, not when its
		// reader next looks.
		f.behind = len(f.pending) + 1
		f.pending, f.bytes = nil, 0
		delete(f.logs.followers, f)
	default:
		if len(f.pending) == cap(f.pending) {
			// Grown by hand, not by append, whose slack would take the
			// slice past followLines.
			grown := make([]LogLine, len(f.pending), min(max(2*cap(f.pending), 64), followLines))
			copy(grown, f.pending)
			f.pending = grown
		}
		f.pending = append(f.pending, ll)
		f.bytes += len(ll.Line)
	}
	select {
	case f.wake <- struct{}{}:
	default: // already woken: it will take this line with the others
	}
}

// Recent returns the last n lines of service, or of every service merged
// in the order they came (by Seq) when service is "". n <= 0 means all
// that is kept. Only the lines returned are copied out of the rings, and a
// look at many services keeps just the newest n records in hand (a bounded
// heap), not one per line.
func (l *Logs) Recent(service string, n int) []LogLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var newest refHeap
	for name, r := range l.rings {
		if service != "" && name != service {
			continue
		}
		r.each(func(seq uint64, off int) {
			f := logRef{seq: seq, name: name, r: r, off: off}
			switch {
			case n <= 0 || len(newest) < n:
				heap.Push(&newest, f)
			case seq > newest[0].seq:
				newest[0] = f
				heap.Fix(&newest, 0)
			}
		})
	}
	sort.Slice(newest, func(i, j int) bool { return newest[i].seq < newest[j].seq })
	out := make([]LogLine, len(newest))
	for i, f := range newest {
		out[i] = f.r.line(f.off, f.name)
	}
	return out
}

// logRef points at one record of a ring.
type logRef struct {
	seq  uint64
	name string
	r    *ring
	off  int
}

// refHeap is a min-heap by Seq: its root is the oldest record kept.
type refHeap []logRef

func (h refHeap) Len() int           { return len(h) }
func (h refHeap) Less(i, j int) bool { return h[i].seq < h[j].seq }
func (h refHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refHeap) Push(x any)        { *h = append(*h, x.(logRef)) }
func (h *refHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Follow streams new lines of service ("" for all) to the Follower it
// returns until its Stop, or until it falls behind by more than
// followLines lines or followBytes bytes of them and is dropped.
func (l *Logs) Follow(service string) *Follower {
	f := &Follower{logs: l, service: service, wake: make(chan struct{}, 1)}
	l.mu.Lock()
	l.followers[f] = true
	l.mu.Unlock()
	return f
}

// Ready is signalled when there are lines to take, or the follower was
// dropped. One signal stands for any number of lines, and it may come
// when Take has already taken them: Take then returns nothing.
func (f *Follower) Ready() <-chan struct{} { return f.wake }

// Take returns every line pending, oldest first, in a slice that is the
// caller's. behind > 0 says the follower was dropped, that many lines
// behind; its lines pending then were let go, and nothing more comes.
// After Stop it returns nothing, and never behind > 0.
func (f *Follower) Take() (lines []LogLine, behind int) {
	f.logs.mu.Lock()
	defer f.logs.mu.Unlock()
	lines, f.pending, f.bytes = f.pending, nil, 0
	return lines, f.behind
}

// Stop ends the following; it is the reader's own end, so it does not
// signal Ready. Stopping again, or after a drop, does nothing more.
func (f *Follower) Stop() {
	f.logs.mu.Lock()
	defer f.logs.mu.Unlock()
	delete(f.logs.followers, f)
	f.pending, f.bytes, f.behind = nil, 0, 0
}

// Forget drops a service's ring (it was removed by a reload). A writer
// taken before keeps nothing from now on; a later one starts a new ring.
func (l *Logs) Forget(service string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	if r := l.rings[service]; r != nil {
		r.free()
		r.forgotten = true
		delete(l.rings, service)
	}
	l.mu.Unlock()
}

// ring is one service's recent output: a circular buffer of max bytes
// holding records [8 seq][8 time][1 stream][4 length][line], oldest first, the
// oldest dropped whole to make room. Its memory is mapped on the first
// line, outside Go's heap: the garbage collector neither scans it nor
// counts it towards its next target, so 1,000 full rings cost their bytes
// and no more, and a quiet service's pages are never touched.
type ring struct {
	max        int
	buf        []byte
	mapped     bool
	start, end int // offsets of the oldest record and of the free space
	used       int
	forgotten  bool // Forget dropped it: a writer holding it keeps nothing
}

// The record head: seq, time, stream, length.
const (
	offTime    = 8
	offStream  = 16
	offLength  = 17
	recordHead = 21
	// maxKept is the longest line a ring keeps whole; a longer one is cut
	// in the ring (the output stream itself keeps it whole).
	maxKept = 4<<10 - recordHead
)

func (r *ring) add(seq uint64, at time.Time, stream string, line []byte) {
	if r.buf == nil {
		r.alloc()
	}
	if limit := min(maxKept, r.max-recordHead); len(line) > limit {
		line = line[:limit]
	}
	need := recordHead + len(line)
	for r.max-r.used < need {
		var head [recordHead]byte
		r.read(r.start, head[:])
		n := recordHead + int(binary.LittleEndian.Uint32(head[offLength:]))
		r.start, r.used = (r.start+n)%r.max, r.used-n
	}
	var head [recordHead]byte
	binary.LittleEndian.PutUint64(head[0:], seq)
	binary.LittleEndian.PutUint64(head[offTime:], uint64(at.UnixNano()))
	if stream == "stderr" {
		head[offStream] = 1
	}
	binary.LittleEndian.PutUint32(head[offLength:], uint32(len(line)))
	r.write(head[:])
	r.write(line)
	r.used += need
}

// write copies p at the free end, wrapping round.
func (r *ring) write(p []byte) {
	n := copy(r.buf[r.end:], p)
	copy(r.buf, p[n:])
	r.end = (r.end + len(p)) % r.max
}

// read copies len(p) bytes from offset at, wrapping round.
func (r *ring) read(at int, p []byte) {
	n := copy(p, r.buf[at:])
	copy(p[n:], r.buf)
}

// each calls fn with the Seq and offset of every record, oldest first.
func (r *ring) each(fn func(seq uint64, off int)) {
	var head [recordHead]byte
	for at, left := r.start, r.used; left > 0; {
		r.read(at, head[:])
		n := recordHead + int(binary.LittleEndian.Uint32(head[offLength:]))
		fn(binary.LittleEndian.Uint64(head[:]), at)
		at, left = (at+n)%r.max, left-n
	}
}

// line decodes the record at off.
func (r *ring) line(off int, service string) LogLine {
	var head [recordHead]byte
	r.read(off, head[:])
	text := make([]byte, binary.LittleEndian.Uint32(head[offLength:]))
	r.read((off+recordHead)%r.max, text)
	stream := "stdout"
	if head[offStream] == 1 {
		stream = "stderr"
	}
	return LogLine{
		Seq:     binary.LittleEndian.Uint64(head[:]),
		Time:    time.Unix(0, int64(binary.LittleEndian.Uint64(head[offTime:]))),
		Service: service, Stream: stream, Line: string(text),
	}
}

// alloc maps the ring's memory; the heap serves if mapping fails.
func (r *ring) alloc() {
	if b, err := unix.Mmap(-1, 0, r.max, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS); err == nil {
		r.buf, r.mapped = b, true
		return
	}
	r.buf = make([]byte, r.max)
}

// free gives the ring's memory back; the ring must not be used after.
func (r *ring) free() {
	if r.mapped {
		_ = unix.Munmap(r.buf)
	}
	r.buf = nil
}
