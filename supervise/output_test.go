package supervise

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPumpCutsLines feeds streams in random chunks: lines come out whole,
// in order, prefixed, and longer ones in MaxLine pieces.
func TestPumpCutsLines(t *testing.T) {
	long := strings.Repeat("x", 2*MaxLine+10)
	cases := []struct {
		in   string
		want []string
	}{
		{"a\nb\n", []string{"a", "b"}},
		{"no newline at the end", []string{"no newline at the end"}},
		{"\n\n", []string{"", ""}},
		{"", nil},
		{long + "\nafter\n", []string{long[:MaxLine], long[MaxLine : 2*MaxLine], long[2*MaxLine:], "after"}},
	}
	rng := rand.New(rand.NewSource(1))
	for _, c := range cases {
		for round := 0; round < 20; round++ {
			var out bytes.Buffer
			sink := NewSink(&out, &out, "text")
			p := pump{sink: sink, service: "svc", stream: "stdout"}
			data := []byte(c.in)
			for len(data) > 0 {
				n := 1 + rng.Intn(min(len(data), MaxLine))
				p.take(data[:n])
				data = data[n:]
			}
			p.finish()
			if !sink.Wait(10 * time.Second) {
				t.Fatal("the queued lines were not written")
			}
			var want string
			for _, l := range c.want {
				want += "svc | " + l + "\n"
			}
			if out.String() != want {
				t.Fatalf("input %.40q: got %.200q, want %.200q", c.in, out.String(), want)
			}
		}
	}
}

// gateWriter records what it is given; every Write waits until the gate
// opens (nil: never closed), and then sleeps for delay.
type gateWriter struct {
	gate   chan struct{}
	delay  time.Duration
	mu     sync.Mutex
	data   bytes.Buffer
	writes int
	torn   int // writes that did not end a line
}

func newGate() *gateWriter { return &gateWriter{gate: make(chan struct{})} }

func (g *gateWriter) Write(b []byte) (int, error) {
	if g.gate != nil {
		<-g.gate
	}
	if g.delay > 0 {
		time.Sleep(g.delay)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes++
	if len(b) > 0 && b[len(b)-1] != '\n' {
		g.torn++
	}
	return g.data.Write(b)
}

func (g *gateWriter) open() { close(g.gate) }

func (g *gateWriter) lines() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := strings.TrimSuffix(g.data.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// drops collects what a Sink reports through OnDrop.
type drops struct {
	mu      sync.Mutex
	lines   uint64
	reports int
}

func (d *drops) report(service, stream string, lines uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lines += lines
	d.reports++
}

func (d *drops) get() (uint64, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lines, d.reports
}

// shorten sets the queue bound and stall limit for one test.
func shorten(t *testing.T, queue int, stall time.Duration) {
	oldQ, oldS := outQueueBytes, stallLimit
	outQueueBytes, stallLimit = queue, stall
	t.Cleanup(func() { outQueueBytes, stallLimit = oldQ, oldS })
}

// testRun is one run's pipes: what the test writes (the service's ends)
// and the handle the supervisor would End.
type testRun struct {
	out, err *os.File
	run      *runOutput
}

func startRun(t testing.TB, sink *Sink, name string) *testRun {
	t.Helper()
	var f outputFiles
	var tr testRun
	for i, w := range []**os.File{&tr.out, &tr.err} {
		r, wr, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		f.parent[i], *w = r, wr
	}
	tr.run = f.pump(sink, name)
	return &tr
}

func (tr *testRun) closeWriters() {
	tr.out.Close()
	tr.err.Close()
}

func openFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

// eventually polls cond until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// TestOutputStalledRestartsLeakNothing is issue 16: a service that writes
// a line and exits, 2,000 times over, while tend's stdout (or stderr) is
// stalled for good. Every dead run's pump ends within its bounded buffer:
// goroutines and descriptors come back to where they were, and what could
// not be written is reported as dropped.
func TestOutputStalledRestartsLeakNothing(t *testing.T) {
	const runs = 2000
	line := fmt.Sprintf("%0200d\n", 0)
	for _, stream := range []string{"stdout", "stderr"} {
		t.Run(stream, func(t *testing.T) {
			shorten(t, outQueueBytes, 20*time.Millisecond)
			runtime.GC()
			goroutines, fds := runtime.NumGoroutine(), openFDs(t)

			stalled, other := newGate(), &gateWriter{}
			outs := map[string]io.Writer{"stdout": stalled, "stderr": other}
			if stream == "stderr" {
				outs = map[string]io.Writer{"stdout": other, "stderr": stalled}
			}
			sink := NewSink(outs["stdout"], outs["stderr"], "text")
			var d drops
			sink.OnDrop(d.report)
			most := 0
			for i := range runs {
				tr := startRun(t, sink, "web")
				w := tr.out
				if stream == "stderr" {
					w = tr.err
				}
				if _, err := w.WriteString(line); err != nil {
					t.Fatal(err)
				}
				tr.closeWriters() // the process exits
				tr.run.End()
				if i%10 == 0 {
					most = max(most, sink.livePumps())
				}
			}
			if !eventually(30*time.Second, func() bool { return sink.livePumps() == 0 }) {
				t.Fatalf("%d pumps of dead runs still running", sink.livePumps())
			}
			var nowG, nowFD int
			settled := eventually(5*time.Second, func() bool {
				nowG, nowFD = runtime.NumGoroutine(), openFDs(t)
				return nowG <= goroutines+3 && nowFD <= fds+2
			})
			t.Logf("%d runs: goroutines %d → %d, fds %d → %d, at most %d pumps alive", runs, goroutines, nowG, fds, nowFD, most)
			if !settled {
				t.Fatalf("after %d runs: goroutines %d → %d, fds %d → %d", runs, goroutines, nowG, fds, nowFD)
			}
			dropped, reports := d.get()
			if dropped == 0 {
				t.Fatal("no dropped lines were reported")
			}

			stalled.open() // the reader moves again: what was queued comes out
			if !sink.Wait(10 * time.Second) {
				t.Fatal("the queue was not written out")
			}
			got := stalled.lines()
			t.Logf("written %d, dropped %d (%d reports), queued bytes at most %d", len(got), dropped, reports, outQueueBytes)
			if uint64(len(got))+dropped != runs {
				t.Fatalf("written %d + dropped %d != %d lines", len(got), dropped, runs)
			}
			if len(got)*len("web | "+line) > outQueueBytes+len("web | "+line) {
				t.Fatalf("%d lines were kept while stalled, more than the queue holds", len(got))
			}
			for _, l := range got {
				if l != "web | "+line[:len(line)-1] {
					t.Fatalf("line %.60q", l)
				}
			}
			if n := len(sink.Logs().Recent("web", 0)); n == 0 {
				t.Fatal("the dropped lines are not in the logs")
			}
			if eventually(5*time.Second, func() bool { return runtime.NumGoroutine() <= goroutines+1 }) == false {
				t.Fatalf("goroutines %d → %d once the output drained", goroutines, runtime.NumGoroutine())
			}
		})
	}
}

// TestOutputSlowWriterGetsEveryLineOfEndedRuns: a reader that is slow but
// moving gets every line of runs that have ended, however long the queue
// waits, as long as it moves within stallLimit.
func TestOutputSlowWriterGetsEveryLineOfEndedRuns(t *testing.T) {
	cases := []struct {
		name   string
		format string
		runs   int
		lines  int
	}{
		{"text", "text", 40, 200},
		{"json", "json", 10, 100},
		{"logfmt", "logfmt", 10, 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shorten(t, 2<<10, time.Second)
			slow := &gateWriter{delay: time.Millisecond}
			sink := NewSink(slow, slow, c.format)
			var d drops
			sink.OnDrop(d.report)
			var all []*testRun
			for r := range c.runs {
				tr := startRun(t, sink, fmt.Sprintf("svc%d", r))
				for i := range c.lines {
					fmt.Fprintf(tr.out, "run %d line %d %s\n", r, i, strings.Repeat("x", 40))
				}
				tr.closeWriters()
				tr.run.End()
				all = append(all, tr)
			}
			if !sink.Wait(30 * time.Second) {
				t.Fatal("the output was not drained")
			}
			if n, _ := d.get(); n != 0 {
				t.Fatalf("%d lines dropped for a moving reader", n)
			}
			next := make([]int, c.runs)
			got := slow.lines()
			for _, l := range got {
				var r, i int
				j := strings.Index(l, "run ")
				if j < 0 {
					t.Fatalf("line %q", l)
				}
				if _, err := fmt.Sscanf(l[j:], "run %d line %d", &r, &i); err != nil || i != next[r] {
					t.Fatalf("line %q: want line %d of run %d (%v)", l, next[r], r, err)
				}
				next[r]++
			}
			if len(got) != c.runs*c.lines {
				t.Fatalf("%d lines, want %d", len(got), c.runs*c.lines)
			}
			t.Logf("%d lines in %d writes", len(got), slow.writes)
		})
	}
}

// TestOutputManyPumpsNeverTearOrInterleave: many pumps at once, lines of
// every length up to MaxLine, a queue far smaller than what is in flight:
// every line arrives whole, in order for its stream, and every write ends
// on a line.
func TestOutputManyPumpsNeverTearOrInterleave(t *testing.T) {
	cases := []struct {
		name   string
		shared bool // stdout and stderr are one output
	}{
		{"one output for both streams", true},
		{"two outputs", false},
	}
	const pumps, lines = 24, 100
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shorten(t, 8<<10, 20*time.Millisecond)
			out, errw := &gateWriter{}, &gateWriter{}
			if c.shared {
				errw = out
			}
			sink := NewSink(out, errw, "text")
			var d drops
			sink.OnDrop(d.report)
			var wg sync.WaitGroup
			for p := range pumps {
				tr := startRun(t, sink, fmt.Sprintf("svc%d", p))
				for s, w := range []*os.File{tr.out, tr.err} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer w.Close()
						rng := rand.New(rand.NewSource(int64(p*2 + s)))
						for i := range lines {
							n := rng.Intn(6 << 10)
							if rng.Intn(40) == 0 {
								n = MaxLine - 40
							}
							fmt.Fprintf(w, "%d %d %d %s\n", s, i, n, strings.Repeat(string(rune('a'+p%26)), n))
						}
					}()
				}
				defer tr.run.End()
			}
			wg.Wait()
			if !sink.Wait(60 * time.Second) {
				t.Fatal("the output was not drained")
			}
			next := map[string]int{}
			count := 0
			for _, w := range []*gateWriter{out, errw} {
				if w.torn > 0 {
					t.Fatalf("%d writes ended inside a line", w.torn)
				}
				for _, l := range w.lines() {
					var p, s, i, n int
					var body string
					if _, err := fmt.Sscanf(l, "svc%d | %d %d %d %s", &p, &s, &i, &n, &body); err != nil {
						t.Fatalf("line %.80q: %v", l, err)
					}
					key := fmt.Sprint(p, s)
					if i != next[key] || body != strings.Repeat(string(rune('a'+p%26)), n) {
						t.Fatalf("torn or out of order: %.80q, want line %d", l, next[key])
					}
					next[key]++
					count++
				}
				if c.shared {
					break
				}
			}
			if count != pumps*2*lines {
				t.Fatalf("%d lines, want %d", count, pumps*2*lines)
			}
			if n, _ := d.get(); n != 0 {
				t.Fatalf("%d lines dropped from live runs", n)
			}
		})
	}
}

// TestOutputLiveRunBlocksOnStall: while its run lives, a pump waits for a
// stalled output however long, stops reading, and the service's pipe fills
// (the service slows); once the output moves every line arrives. If the
// run ends instead, the pump drops what cannot be written after stallLimit,
// reads its pipe to EOF, and ends.
func TestOutputLiveRunBlocksOnStall(t *testing.T) {
	cases := []struct {
		name string
		end  bool // the run ends while stalled
	}{
		{"the output moves again", false},
		{"the run ends while stalled", true},
	}
	const lines = 3000
	line := strings.Repeat("y", 99)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			shorten(t, 4<<10, 30*time.Millisecond)
			stalled := newGate()
			sink := NewSink(stalled, io.Discard, "text")
			var d drops
			sink.OnDrop(d.report)
			tr := startRun(t, sink, "live")
			var written atomic.Int64
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				for range lines {
					if _, err := tr.out.WriteString(line + "\n"); err != nil {
						return // the deadline below: the service is gone
					}
					written.Add(1)
				}
			}()
			// The writes stop: pipe, pump and queue are full.
			last := int64(-1)
			if !eventually(10*time.Second, func() bool {
				n := written.Load()
				same := n == last
				last = n
				time.Sleep(100 * time.Millisecond)
				return same
			}) {
				t.Fatal("the service's writes never stopped")
			}
			time.Sleep(5 * stallLimit)
			n := written.Load()
			if n != last || n >= lines {
				t.Fatalf("the service wrote on (%d, then %d of %d lines) while the output was stalled", last, n, lines)
			}
			if got, _ := d.get(); got != 0 || sink.livePumps() != 2 {
				t.Fatalf("a live run dropped %d lines; %d pumps", got, sink.livePumps())
			}
			t.Logf("stalled after %d of %d lines", n, lines)
			if c.end {
				tr.out.SetWriteDeadline(time.Now()) // the process dies
				<-wrote
				tr.closeWriters()
				tr.run.End()
				if !eventually(5*time.Second, func() bool { return sink.livePumps() == 0 }) {
					t.Fatal("the pumps of an ended run outlived a stalled output")
				}
			}
			stalled.open()
			<-wrote
			tr.closeWriters()
			tr.run.End()
			if !sink.Wait(10 * time.Second) {
				t.Fatal("the output was not drained")
			}
			got := stalled.lines()
			dropped, reports := d.get()
			total := written.Load()
			t.Logf("written %d of %d, dropped %d (%d reports)", len(got), total, dropped, reports)
			switch {
			case !c.end && (len(got) != lines || dropped != 0):
				t.Fatalf("got %d lines, dropped %d, want all %d", len(got), dropped, lines)
			case c.end && (dropped == 0 || reports != 1 || uint64(len(got))+dropped != uint64(total)):
				t.Fatalf("got %d + dropped %d (%d reports), want %d in all", len(got), dropped, reports, total)
			}
			for _, l := range got {
				if l != "live | "+line {
					t.Fatalf("line %.60q", l)
				}
			}
		})
	}
}

// TestOutputCrashLoopOnSlowReader: a service that restarts faster than a
// slow but moving reader takes its lines. Only one ended run of a service
// waits for room at a time; the others drop what does not fit at once, so
// dead runs' pumps do not pile up while the reader crawls.
func TestOutputCrashLoopOnSlowReader(t *testing.T) {
	shorten(t, 1<<10, time.Second)
	const runs, lines = 300, 5
	slow := &gateWriter{delay: 5 * time.Millisecond}
	sink := NewSink(slow, io.Discard, "text")
	var d drops
	sink.OnDrop(d.report)
	body := strings.Repeat("z", 200)
	for r := range runs {
		tr := startRun(t, sink, "crash")
		for i := range lines {
			fmt.Fprintf(tr.out, "%d %d %s\n", r, i, body)
		}
		tr.closeWriters()
		tr.run.End()
	}
	if !eventually(2*time.Second, func() bool { return sink.livePumps() <= 1 }) {
		t.Fatalf("%d pumps of dead runs wait on a crawling reader", sink.livePumps())
	}
	if !sink.Wait(30 * time.Second) {
		t.Fatal("the output was not drained")
	}
	got := slow.lines()
	dropped, _ := d.get()
	t.Logf("written %d, dropped %d of %d", len(got), dropped, runs*lines)
	if dropped == 0 || uint64(len(got))+dropped != runs*lines {
		t.Fatalf("written %d + dropped %d, want %d in all, some dropped", len(got), dropped, runs*lines)
	}
	for _, l := range got {
		var r, i int
		var b string
		if _, err := fmt.Sscanf(l, "crash | %d %d %s", &r, &i, &b); err != nil || b != body {
			t.Fatalf("line %.60q", l)
		}
	}
}

// TestLogsKeepArrivalOrderWhenTheClockGoesBack is issue 18: the wall clock
// is set back an hour (date -s) while a service writes. The newest lines
// are those that came last, whatever their times say.
func TestLogsKeepArrivalOrderWhenTheClockGoesBack(t *testing.T) {
	out := &gateWriter{}
	sink := NewSink(out, out, "text")
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var calls atomic.Int64
	sink.now = func() time.Time { // a second a line; an hour back after the third
		i := calls.Add(1) - 1
		at := start.Add(time.Duration(i) * time.Second)
		if i >= 3 {
			at = at.Add(-time.Hour)
		}
		return at
	}
	tr := startRun(t, sink, "svc")
	for i := range 6 {
		fmt.Fprintf(tr.out, "line %d\n", i)
	}
	tr.closeWriters()
	tr.run.End()
	if !sink.Wait(10 * time.Second) {
		t.Fatal("the lines were not written")
	}
	lines := func(ll []LogLine) string {
		var s []string
		for _, l := range ll {
			s = append(s, l.Line)
		}
		return strings.Join(s, ", ")
	}
	for _, service := range []string{"svc", ""} {
		if got := lines(sink.Logs().Recent(service, 3)); got != "line 3, line 4, line 5" {
			t.Errorf("Recent(%q, 3) = %s; want the last three that came", service, got)
		}
		if got := lines(sink.Logs().Recent(service, 0)); got != "line 0, line 1, line 2, line 3, line 4, line 5" {
			t.Errorf("Recent(%q, 0) = %s; want every line in the order it came", service, got)
		}
	}
}

// TestForgottenServiceStaysForgotten is issue 18: after the supervisor
// forgets a removed service, a pump of its old run that still reads (an
// orphan holds the pipe) must not bring its ring back; the runs of the
// service added again by a later reload are kept.
func TestForgottenServiceStaysForgotten(t *testing.T) {
	out := &gateWriter{}
	sink := NewSink(out, out, "text")
	written := func(line string) {
		t.Helper()
		if !eventually(5*time.Second, func() bool { return strings.Contains(strings.Join(out.lines(), "\n"), line) }) {
			t.Fatalf("%q never written: %q", line, out.lines())
		}
	}
	kept := func(service string) (s []string) {
		for _, l := range sink.Logs().Recent(service, 0) {
			s = append(s, l.Service+": "+l.Line)
		}
		return s
	}
	old := startRun(t, sink, "svc")
	fmt.Fprintln(old.out, "first run")
	written("svc | first run")
	old.run.End() // its process is gone; an orphan keeps the pipe open
	sink.Logs().Forget("svc")
	fmt.Fprintln(old.out, "from the orphan")
	written("svc | from the orphan")
	if got := kept(""); len(got) != 0 {
		t.Fatalf("a forgotten service's ring came back: %q", got)
	}
	again := startRun(t, sink, "svc") // added again by a reload
	fmt.Fprintln(again.out, "second run")
	fmt.Fprintln(old.out, "the orphan again")
	written("svc | second run")
	written("svc | the orphan again")
	if got := strings.Join(kept("svc"), "; "); got != "svc: second run" {
		t.Fatalf("kept %q; want the new run's line only", got)
	}
	old.closeWriters()
	again.closeWriters()
	again.run.End()
	if !sink.Wait(10 * time.Second) {
		t.Fatal("the pumps did not end")
	}
}
