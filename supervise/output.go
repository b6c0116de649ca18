package supervise

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/tend-init/tend/guard"
)

// MaxLine is the longest line written whole; a longer one is split.
const MaxLine = 64 << 10

// Sink writes services' output lines to tend's own stdout and stderr. A
// line goes out in one write under one lock, so lines are never torn or
// interleaved. Writes block when tend's reader is slow, which stops the
// pump, fills the service's pipe and slows the service: memory stays flat.
type Sink struct {
	mu     sync.Mutex
	stdout io.Writer
	stderr io.Writer
	json   bool
	now    func() time.Time
	wg     sync.WaitGroup
	broken map[io.Writer]bool // outputs whose reader is gone; their lines are dropped
}

// NewSink writes to stdout and stderr, as "name | line" or as JSON lines.
func NewSink(stdout, stderr io.Writer, jsonFormat bool) *Sink {
	return &Sink{stdout: stdout, stderr: stderr, json: jsonFormat, now: time.Now, broken: map[io.Writer]bool{}}
}

// Pump copies r to the sink line by line until EOF, then closes r.
func (s *Sink) Pump(service, stream string, r *os.File) {
	s.wg.Add(1)
	guard.Go("output of "+service, func() {
		defer s.wg.Done()
		defer r.Close()
		br := bufio.NewReaderSize(r, MaxLine)
		for {
			line, err := br.ReadSlice('\n')
			if len(line) > 0 {
				s.write(service, stream, line)
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return // EOF: every writer has closed the pipe
			}
		}
	})
}

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

func (s *Sink) write(service, stream string, line []byte) {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	var buf []byte
	if s.json {
		buf, _ = json.Marshal(jsonLine{Time: s.now().Format(time.RFC3339Nano), Service: service, Stream: stream, Line: string(line)})
		buf = append(buf, '\n')
	} else {
		buf = make([]byte, 0, len(service)+len(line)+4)
		buf = append(append(append(append(buf, service...), " | "...), line...), '\n')
	}
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
