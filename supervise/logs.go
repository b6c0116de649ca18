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
// not keep up is dropped (its channel closed), never waited for: the pumps
// that feed Logs must not slow down for a client. Lines are ordered by
// their Seq, never by time: the wall clock may go back.
type Logs struct {
	mu        sync.Mutex
	max       int    // bytes of ring per service
	seq       uint64 // the last Seq given
	rings     map[string]*ring
	followers map[*follower]bool
}

// DefaultLogBytes is each service's ring: about 80 lines of 80 characters,
// 8 MiB for 1,000 services whose rings are all full (their memory is
// outside Go's heap, so it costs that and no more).
const DefaultLogBytes = 8 << 10

// MinLogBytes is the smallest ring: one record of a whole kept line.
const MinLogBytes = 4 << 10

// followBuffer is how many lines a follower may lag behind before it is
// dropped. Its channel has this capacity: a dropped follower's was full,
// so cap tells how far behind it was.
const followBuffer = 1024

// NewLogs keeps maxBytes of output per service (DefaultLogBytes if <= 0).
func NewLogs(maxBytes int) *Logs {
	if maxBytes <= 0 {
		maxBytes = DefaultLogBytes
	}
	maxBytes = max(maxBytes, MinLogBytes)
	return &Logs{max: maxBytes, rings: map[string]*ring{}, followers: map[*follower]bool{}}
}

type follower struct {
	service string // "" follows every service
	ch      chan LogLine
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
		if f.service != "" && f.service != service {
			continue
		}
		select {
		case f.ch <- ll:
		default:
			close(f.ch) // too slow: dropped
			delete(l.followers, f)
		}
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

// Follow streams new lines of service ("" for all) until stop is called or
// the follower falls behind followBuffer lines; then the channel is
// closed. Nothing else closes it, so a reader that sees it closed before
// calling stop was dropped.
func (l *Logs) Follow(service string) (lines <-chan LogLine, stop func()) {
	f := &follower{service: service, ch: make(chan LogLine, followBuffer)}
	l.mu.Lock()
	l.followers[f] = true
	l.mu.Unlock()
	return f.ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.followers[f] {
			delete(l.followers, f)
			close(f.ch)
		}
	}
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
