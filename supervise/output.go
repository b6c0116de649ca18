package supervise

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
)

// MaxLine is the longest line written whole; a longer one is split.
const MaxLine = 64 << 10

// readChunk is each stream's read buffer. Small on purpose: 1,000 services
// have 2,000 streams, mostly idle, each holding its buffer while it waits.
// A longer line is gathered in the pump's partial buffer, up to MaxLine.
const readChunk = 4 << 10

// Sink writes services' output lines to tend's own stdout and stderr.
// Pumps cut each stream into lines and queue whole formatted lines; one
// writer goroutine per output writes them in order, each chunk in one
// write, so lines are never torn or interleaved and no pump ever waits on
// a write. A queue holds at most outQueueBytes: when tend's reader is slow,
// a pump waits for room, stops reading, the service's pipe fills and the
// service slows; memory stays flat. Once a run has ended (runOutput.End),
// its pumps wait only while the output makes progress: what a stalled
// reader cannot take is dropped and counted, and the run's pipes closed.
type Sink struct {
	stdout, stderr *outQueue // the same queue when both are one file
	layout         string    // log_format: text, logfmt or json
	now            func() time.Time
	wg             sync.WaitGroup // pumps and running writers
	pumps          atomic.Int64   // pump goroutines running
	onDrop         func(service, stream string, lines uint64)
	logs           *Logs // recent lines per service, for tend ctl logs

	filesMu     sync.Mutex
	files       map[string]*rotFile // output files with rotation that a run holds open, by path
	onFileError func(service, msg string)
}

// NewSink writes to stdout and stderr in a log_format: "name | line" for
// text, one logfmt or JSON line with time, service, stream and line.
func NewSink(stdout, stderr io.Writer, format string) *Sink {
	s := &Sink{layout: format, now: time.Now, logs: NewLogs(0)}
	s.stdout = newOutQueue(stdout, &s.wg)
	s.stderr = s.stdout
	if !sameOutput(stdout, stderr) {
		s.stderr = newOutQueue(stderr, &s.wg)
	}
	return s
}

// sameOutput tells whether two writers are one output (say 2>&1): their
// lines must then go through one queue, or two writers could interleave
// large writes.
func sameOutput(a, b io.Writer) bool {
	if t := reflect.TypeOf(a); t == reflect.TypeOf(b) && t != nil && t.Comparable() && a == b {
		return true
	}
	fa, ok1 := a.(*os.File)
	fb, ok2 := b.(*os.File)
	if !ok1 || !ok2 || fa == nil || fb == nil {
		return false
	}
	sa, err1 := fa.Stat()
	sb, err2 := fb.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// KeepLogs sets how many bytes of recent output are kept per service.
func (s *Sink) KeepLogs(maxBytes int) { s.logs = NewLogs(maxBytes) }

// Logs is the services' recent output.
func (s *Sink) Logs() *Logs { return s.logs }

// OnDrop sets what is told, once per stream per run when its pump ends,
// how many lines were dropped because the output was stalled after the run
// had ended. Set it once, before any pump starts; nil reports nothing. The
// dropped lines are still kept in Logs.
func (s *Sink) OnDrop(report func(service, stream string, lines uint64)) { s.onDrop = report }

// OnFileError sets what is told when writing or rotating an output file
// tend writes (output_max_size) fails: once per kind of failure until a
// rotation works again, never once a line. Set it before any pump starts.
func (s *Sink) OnFileError(report func(service, msg string)) { s.onFileError = report }

// livePumps is the number of pump goroutines still running.
func (s *Sink) livePumps() int { return int(s.pumps.Load()) }

// runOutput is the output of one run: its pumps learn through it that no
// process of the run is left. A nil *runOutput is a run without pipes.
type runOutput struct {
	once  sync.Once
	ended chan struct{}
}

func newRunOutput() *runOutput { return &runOutput{ended: make(chan struct{})} }

// End tells the run's pumps that no process of the run is left: from now
// on they wait for a stalled output only while it makes progress, then drop
// what it cannot take, read their pipes to EOF and close them. It never
// blocks; calling it again does nothing.
func (o *runOutput) End() {
	if o == nil {
		return
	}
	o.once.Do(func() { close(o.ended) })
}

func (o *runOutput) endChan() <-chan struct{} {
	if o == nil {
		return nil
	}
	return o.ended
}

// pump copies r to the sink until EOF, then closes r. Every whole line that
// one read brings is formatted into one buffer and queued at once: fewer
// system calls, and still never a torn or interleaved line.
func (s *Sink) pump(service, stream string, r *os.File, run *runOutput) {
	s.wg.Add(1)
	s.pumps.Add(1)
	// The ring is taken on the caller's goroutine: a Forget after the run
	// started then surely comes after it.
	logs := s.logs.writer(service)
	guard.Go("output of "+service, func() {
		defer s.wg.Done()
		defer s.pumps.Add(-1)
		defer r.Close()
		p := pump{sink: s, service: service, stream: stream, run: run, logs: logs, buf: make([]byte, readChunk)}
		defer p.report()
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
	run             *runOutput // nil: a run that never ends
	logs            *logWriter // the ring of this run's service, taken as the pump started
	buf             []byte
	partial         []byte // the start of a line whose end has not come yet
	out             []byte // formatted lines waiting to be queued
	lines           uint64 // lines in out
	dropped         uint64 // lines dropped because the output was stalled
	dropping        bool   // the run ended and the output stalled: never wait again
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
	p.lines++
	p.logs.add(p.stream, now, line)
}

// flush queues the formatted lines, handing their buffer over: 2,000
// mostly idle streams share a few buffers instead of holding one each.
func (p *pump) flush() {
	if p.out == nil {
		return
	}
	out, lines := p.out, p.lines
	p.out, p.lines = nil, 0
	if len(out) == 0 {
		recycle(out)
		return
	}
	q := p.sink.stdout
	if p.stream == "stderr" {
		q = p.sink.stderr
	}
	if q.put(p.service, out, p.run.endChan(), p.dropping) == dropped {
		p.dropped += lines
		p.dropping = true
	}
}

// report tells how many lines were dropped, once, as the pump ends.
func (p *pump) report() {
	if p.dropped > 0 && p.sink.onDrop != nil {
		p.sink.onDrop(p.service, p.stream, p.dropped)
	}
}

var outBufs = sync.Pool{New: func() any { b := make([]byte, 0, readChunk); return &b }}

// Wait waits until every pump has reached EOF and every queued line is
// written, for as long as the output makes progress: a slow reader gets
// every line, a stalled one costs stall (counted from the call or the last
// write that completed, whichever is later), not forever. It reports
// whether everything was written.
func (s *Sink) Wait(stall time.Duration) bool {
	done := make(chan struct{})
	guard.Go("output drain", func() { s.wg.Wait(); close(done) })
	from := time.Now()
	t := time.NewTimer(stall)
	defer t.Stop()
	for {
		select {
		case <-done:
			return true
		case <-t.C:
			last := from
			for _, p := range []time.Time{s.stdout.lastProgress(), s.stderr.lastProgress()} {
				if p.After(last) {
					last = p
				}
			}
			if left := stall - time.Since(last); left > 0 {
				t.Reset(left) // a write completed meanwhile: wait on
				continue
			}
			return false
		}
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

// outputFiles are a run's stdin, stdout and stderr: the child's ends and,
// for "prefix", the ends tend reads.
type outputFiles struct {
	child  [3]*os.File
	parent [2]*os.File // read ends of stdout and stderr pipes, prefix only; parent[0] alone for a file with rotation
	shared bool        // child[1..2] are tend's own; never close them
	rot    *rotFile    // the output file tend writes (output_max_size), or nil
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
		if svc.spec.OutputMaxSize > 0 {
			// tend writes the file: one pipe for stdout and stderr, as
			// one file has one order.
			rf, err := s.opt.Sink.openRotating(svc.name, filepath.Clean(out), svc.spec.OutputMaxSize, svc.spec.OutputBackups)
			if err != nil {
				devnull.Close()
				return nil, err
			}
			r, w, err := os.Pipe()
			if err != nil {
				rf.release()
				devnull.Close()
				return nil, err
			}
			f.parent[0], f.child[1], f.child[2], f.rot = r, w, w, rf
			return f, nil
		}
		file, err := openOutputFile(out)
		if err != nil {
			devnull.Close()
			return nil, err
		}
		f.child[1], f.child[2] = file, file
	}
	return f, nil
}

// openOutputFile opens output = PATH for appending. tend opens it as root,
// before the switch to the service's user, so its last component must not
// be a symbolic link (O_NOFOLLOW): a user who can write the log's directory
// could otherwise point it at any file and have its output appended there.
// The directories above it are trusted: they should not be writable by the
// service's user (docs/configuration.md). O_NONBLOCK for the open only: a
// FIFO nobody reads fails at once (ENXIO) instead of stalling the
// supervisor.
func openOutputFile(path string) (*os.File, error) {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o644)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("output %s is a symbolic link, which tend does not follow (the service's user could point it at any file): name the file itself", path)
	}
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(int(file.Fd()), false); err != nil {
		file.Close()
		return nil, err
	}
	return file, nil
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
	if f.rot != nil {
		f.rot.release()
		f.rot = nil
	}
}

// pump starts copying the run's stdout and stderr pipes to sink. The
// supervisor calls End on what it returns (nil when the run has no pipes)
// once no process of the run is left.
func (f *outputFiles) pump(sink *Sink, name string) *runOutput {
	if f.rot != nil {
		// Written as the service would write the file itself: waited
		// for, never dropped.
		sink.pumpFile(name, f.parent[0], f.rot)
		return nil
	}
	if f.parent[0] == nil {
		return nil
	}
	run := newRunOutput()
	sink.pump(name, "stdout", f.parent[0], run)
	sink.pump(name, "stderr", f.parent[1], run)
	return run
}
