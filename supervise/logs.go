package supervise

import (
	"encoding/binary"
	"sort"
	"sync"
	"time"
)

// LogLine is one line a service wrote, as `tend ctl logs` shows it.
type LogLine struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Stream  string    `json:"stream"`
	Line    string    `json:"line"`
}

// Logs keeps each service's recent output in a ring of at most a fixed
// number of bytes, and hands new lines to followers. A follower that does
// not keep up is dropped (its channel closed), never waited for: the pumps
// that feed Logs must not slow down for a client.
type Logs struct {
	mu        sync.Mutex
	max       int // bytes of ring per service
	rings     map[string]*ring
	followers map[*follower]bool
}

// DefaultLogBytes is each service's ring: about 200 lines of 80 characters,
// 16 MiB for 1,000 services whose rings are all full.
const DefaultLogBytes = 16 << 10

// followBuffer is how many lines a follower may lag behind before it is
// dropped.
const followBuffer = 1024

// NewLogs keeps maxBytes of output per service (DefaultLogBytes if <= 0).
func NewLogs(maxBytes int) *Logs {
	if maxBytes <= 0 {
		maxBytes = DefaultLogBytes
	}
	return &Logs{max: maxBytes, rings: map[string]*ring{}, followers: map[*follower]bool{}}
}

type follower struct {
	service string // "" follows every service
	ch      chan LogLine
}

// Add records a line; it never blocks.
func (l *Logs) Add(service, stream string, at time.Time, line []byte) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.rings[service]
	if r == nil {
		r = &ring{max: l.max}
		l.rings[service] = r
	}
	r.add(at, stream, line)
	if len(l.followers) == 0 {
		return
	}
	ll := LogLine{Time: at, Service: service, Stream: stream, Line: string(line)}
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
// by time when service is "". n <= 0 means all that is kept.
func (l *Logs) Recent(service string, n int) []LogLine {
	l.mu.Lock()
	var out []LogLine
	for name, r := range l.rings {
		if service == "" || name == service {
			out = r.appendLines(out, name)
		}
	}
	l.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// Follow streams new lines of service ("" for all) until stop is called or
// the follower falls behind; then the channel is closed.
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

// Forget drops a service's ring (it was removed by a reload).
func (l *Logs) Forget(service string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	delete(l.rings, service)
	l.mu.Unlock()
}

// ring holds records in blocks of blockSize bytes, oldest first; whole
// blocks are dropped from the front when the ring is over its size. A
// record is [8 time][1 stream][4 length][line], never split across blocks,
// so a quiet service costs one small block and nothing per line.
type ring struct {
	max    int
	blocks [][]byte
	size   int
}

const (
	blockSize  = 4 << 10
	recordHead = 13
	// maxKept is the longest line the ring keeps; a longer one is cut in
	// the ring (the output stream itself keeps it whole).
	maxKept = blockSize - recordHead
)

func (r *ring) add(at time.Time, stream string, line []byte) {
	if len(line) > maxKept {
		line = line[:maxKept]
	}
	need := recordHead + len(line)
	if n := len(r.blocks); n == 0 || cap(r.blocks[n-1])-len(r.blocks[n-1]) < need {
		r.blocks = append(r.blocks, make([]byte, 0, blockSize))
		r.size += blockSize
		for r.size > r.max+blockSize && len(r.blocks) > 1 {
			r.blocks[0] = nil
			r.blocks = r.blocks[1:]
			r.size -= blockSize
		}
	}
	b := &r.blocks[len(r.blocks)-1]
	var head [recordHead]byte
	binary.LittleEndian.PutUint64(head[0:], uint64(at.UnixNano()))
	if stream == "stderr" {
		head[8] = 1
	}
	binary.LittleEndian.PutUint32(head[9:], uint32(len(line)))
	*b = append(append(*b, head[:]...), line...)
}

func (r *ring) appendLines(out []LogLine, service string) []LogLine {
	for _, b := range r.blocks {
		for len(b) >= recordHead {
			n := int(binary.LittleEndian.Uint32(b[9:]))
			stream := "stdout"
			if b[8] == 1 {
				stream = "stderr"
			}
			out = append(out, LogLine{
				Time:    time.Unix(0, int64(binary.LittleEndian.Uint64(b))),
				Service: service,
				Stream:  stream,
				Line:    string(b[recordHead : recordHead+n]),
			})
			b = b[recordHead+n:]
		}
	}
	return out
}
