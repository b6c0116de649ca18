package supervise

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/tend-init/tend/guard"
)

// MaxLine is the longest line written whole; a longer one is split.
const MaxLine = 64 << 10

// readChunk is each stream's read buffer. Small on purpose: 1,000 services
// have 2,000 streams, mostly idle, each holding its buffer while it waits.
// A longer line is gathered in the pump's partial buffer, up to MaxLine.
const readChunk = 4 << 10

// Sink writes services' output lines to tend's own stdout and stderr. A
// line goes out in one write under one lock, so lines are never torn or
// interleaved. Writes block when tend's reader is slow, which stops the
// pump, fills the service's pipe and slows the service: memory stays flat.
type Sink struct {
	mu     sync.Mutex
	stdout io.Writer
	stderr io.Writer
	layout string // log_format: text, logfmt or json
	now    func() time.Time
	wg     sync.WaitGroup
	broken map[io.Writer]bool // outputs whose reader is gone; their lines are dropped
	logs   *Logs              // recent lines per service, for tend ctl logs
}

// NewSink writes to stdout and stderr in a log_format: "name | line" for
// text, one logfmt or JSON line with time, service, stream and line.
func NewSink(stdout, stderr io.Writer, format string) *Sink {
	return &Sink{stdout: stdout, stderr: stderr, layout: format, now: time.Now, broken: map[io.Writer]bool{}, logs: NewLogs(0)}
}

// KeepLogs sets how many bytes of recent output are kept per service.
func (s *Sink) KeepLogs(maxBytes int) { s.logs = NewLogs(maxBytes) }

// Logs is the services' recent output.
func (s *Sink) Logs() *Logs { return s.logs }

// Pump copies r to the sink until EOF, then closes r. Every whole line that
// one read brings is formatted into one buffer and written at once: fewer
// system calls, and still never a torn or interleaved line.
func (s *Sink) Pump(service, stream string, r *os.File) {
	s.wg.Add(1)
	guard.Go("output of "+service, func() {
		defer s.wg.Done()
		defer r.Close()
		p := pump{sink: s, service: service, stream: stream, buf: make([]byte, readChunk)}
		for {
			n, err := r.Read(p.buf)
			p.take(p.buf[:n])
			if err != nil { // EOF: every writer has closed the pipe
				p.finish()
				return
			}
		}
	})
}

// pump cuts one stream into lines.
type pump struct {
	sink            *Sink
	service, stream string
	buf             []byte
	partial         []byte // the start of a line whose end has not come yet
	out             []byte // formatted lines waiting for one write
}

func (p *pump) take(data []byte) {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			p.partial = append(p.partial, data...)
			break
		}
		line := data[:i]
		if len(p.partial) > 0 {
			line = append(p.partial, line...)
		}
		p.line(line)
		p.partial = p.partial[:0]
		data = data[i+1:]
	}
	// A line longer than MaxLine goes out in MaxLine pieces.
	for len(p.partial) >= MaxLine {
		p.line(p.partial[:MaxLine])
		p.partial = append(p.partial[:0], p.partial[MaxLine:]...)
	}
	p.flush()
	if len(p.partial) == 0 && cap(p.partial) > 2*MaxLine {
		p.partial = nil // a burst of long lines is over; give the memory back
	}
}

// finish writes a last line that had no newline.
func (p *pump) finish() {
	if len(p.partial) > 0 {
		p.line(p.partial)
		p.partial = nil
	}
	p.flush()
}

func (p *pump) line(line []byte) {
	now := p.sink.now()
	for len(line) > MaxLine {
		p.piece(now, line[:MaxLine])
		line = line[MaxLine:]
	}
	p.piece(now, line)
}

func (p *pump) piece(now time.Time, line []byte) {
	if p.out == nil {
		p.out = (*outBufs.Get().(*[]byte))[:0]
	}
	p.out = p.sink.format(p.out, now, p.service, p.stream, line)
	p.sink.logs.Add(p.service, p.stream, now, line)
}

// flush writes the formatted lines and gives their buffer back: 2,000
// mostly idle streams share a few buffers instead of holding one each.
func (p *pump) flush() {
	if p.out == nil {
		return
	}
	if len(p.out) > 0 {
		p.sink.write(p.stream, p.out)
	}
	if cap(p.out) <= 2*MaxLine {
		b := p.out[:0]
		outBufs.Put(&b)
	}
	p.out = nil
}

var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, readChunk); return &b }}

// Wait returns once every pump has reached EOF, or after limit.
func (s *Sink) Wait(limit time.Duration) bool {
	done := make(chan struct{})
	guard.Go("output drain", func() { s.wg.Wait(); close(done) })
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

type jsonLine struct {
	Time    string `json:"time"`
	Service string `json:"service"`
	Stream  string `json:"stream"`
	Line    string `json:"line"`
}

// format appends one line, as text or JSON, to out.
func (s *Sink) format(out []byte, now time.Time, service, stream string, line []byte) []byte {
	switch s.layout {
	case "json":
		b, _ := json.Marshal(jsonLine{Time: now.Format(time.RFC3339Nano), Service: service, Stream: stream, Line: string(line)})
		return append(append(out, b...), '\n')
	case "logfmt":
		out = append(out, "time="...)
		out = now.AppendFormat(out, time.RFC3339Nano)
		out = append(append(append(out, " service="...), service...), " stream="...)
		out = append(append(out, stream...), " line="...)
		return append(strconv.AppendQuote(out, string(line)), '\n')
	}
	out = append(append(append(out, service...), " | "...), line...)
	return append(out, '\n')
}

// write sends whole formatted lines in one write, under the lock that
// keeps pumps from interleaving.
func (s *Sink) write(stream string, buf []byte) {
	w := s.stdout
	if stream == "stderr" {
		w = s.stderr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken[w] {
		return
	}
	// A closed reader (EPIPE) must not stop tend, nor block the service:
	// keep draining its pipe and drop the lines.
	if _, err := w.Write(buf); errors.Is(err, syscall.EPIPE) {
		s.broken[w] = true
	}
}

// outputFiles are a run's stdin, stdout and stderr: the child's ends and,
// for "prefix", the ends tend reads.
type outputFiles struct {
	child  [3]*os.File
	parent [2]*os.File // read ends of stdout and stderr pipes, prefix only
	shared bool        // child[1..2] are tend's own; never close them
}

func (s *Supervisor) outputFiles(svc *service) (*outputFiles, error) {
	f := &outputFiles{}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	f.child[0] = devnull
	switch out := svc.spec.Output; out {
	case "inherit":
		f.child[1], f.child[2], f.shared = os.Stdout, os.Stderr, true
	case "prefix", "":
		for i := range 2 {
			r, w, err := os.Pipe()
			if err != nil {
				f.closeChildEnds()
				f.closeParentEnds()
				return nil, err
			}
			f.parent[i], f.child[i+1] = r, w
		}
	default:
		file, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			devnull.Close()
			return nil, err
		}
		f.child[1], f.child[2] = file, file
	}
	return f, nil
}

func (f *outputFiles) fds() []uintptr {
	return []uintptr{f.child[0].Fd(), f.child[1].Fd(), f.child[2].Fd()}
}

// closeChildEnds closes tend's copies of what the child got, so that the
// pipes reach EOF when the child and its descendants are done with them.
func (f *outputFiles) closeChildEnds() {
	f.child[0].Close()
	if f.shared {
		return
	}
	seen := map[*os.File]bool{}
	for _, c := range f.child[1:] {
		if c != nil && !seen[c] {
			seen[c] = true
			c.Close()
		}
	}
}

func (f *outputFiles) closeParentEnds() {
	for _, p := range f.parent {
		if p != nil {
			p.Close()
		}
	}
}

func (f *outputFiles) pump(sink *Sink, name string) {
	if f.parent[0] == nil {
		return
	}
	sink.Pump(name, "stdout", f.parent[0])
	sink.Pump(name, "stderr", f.parent[1])
}
