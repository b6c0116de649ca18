package logging

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// gate is an output that blocks every write until opened, then records.
type gate struct {
	mu      sync.Mutex
	open    chan struct{}
	buf     bytes.Buffer
	writes  int
	entered chan struct{} // receives once per write that started
	fail    error         // returned (after the gate) while not nil
}

func newGate() *gate {
	return &gate{open: make(chan struct{}), entered: make(chan struct{}, 1<<16)}
}

func (g *gate) Write(p []byte) (int, error) {
	g.entered <- struct{}{}
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes++
	if g.fail != nil {
		return 0, g.fail
	}
	return g.buf.Write(p)
}

func (g *gate) setFail(err error) {
	g.mu.Lock()
	g.fail = err
	g.mu.Unlock()
}

func (g *gate) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.buf.String()
}

func TestWriteNeverBlocksOnAStalledOutput(t *testing.T) {
	g := newGate() // never opened: a reader that stopped for good
	w := New(g, Options{MaxLines: 8})
	done := make(chan struct{})
	go func() {
		for i := range 10000 {
			fmt.Fprintf(w, "line %d\n", i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a stalled output")
	}
	dropped, waiting := w.Stats()
	// The first batch sits in the blocked write (a few lines, whatever had
	// been queued when the writer woke), 8 wait, the rest are dropped.
	if waiting > 8 || dropped < 10000-100 {
		t.Fatalf("dropped %d, waiting %d", dropped, waiting)
	}
	if w.Flush(50 * time.Millisecond) {
		t.Fatal("Flush reported success on a stalled output")
	}
}

func TestDroppedLinesAreReportedInPlaceAndOrderKept(t *testing.T) {
	g := newGate()
	w := New(g, Options{MaxLines: 4})
	fmt.Fprintln(w, "a0")
	<-g.entered // the writer holds a0 in a blocked write
	for _, l := range []string{"a1", "a2", "a3", "a4"} {
		fmt.Fprintln(w, l) // fills the queue
	}
	for i := range 5 {
		fmt.Fprintf(w, "x%d\n", i) // dropped: the queue is full
	}
	close(g.open)
	if !w.Flush(5 * time.Second) {
		t.Fatal("Flush timed out")
	}
	fmt.Fprintln(w, "b0")
	if !w.Flush(5 * time.Second) {
		t.Fatal("Flush timed out")
	}
	want := "a0\na1\na2\na3\na4\ntend: 5 log lines dropped\nb0\n"
	if got := g.String(); got != want {
		t.Fatalf("output\n%q\nwant\n%q", got, want)
	}
}

func TestDropsAtTheEndAreReportedByFlush(t *testing.T) {
	g := newGate()
	w := New(g, Options{MaxLines: 1})
	fmt.Fprintln(w, "a")
	<-g.entered
	fmt.Fprintln(w, "b")
	fmt.Fprintln(w, "c") // dropped
	close(g.open)
	if !w.Flush(5 * time.Second) {
		t.Fatal("Flush timed out")
	}
	if got, want := g.String(), "a\nb\ntend: 1 log lines dropped\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func TestLinesLostToAGoneOutputAreCountedWhenItWorksAgain(t *testing.T) {
	g := newGate()
	close(g.open)
	g.setFail(syscall.EPIPE)
	w := New(g, Options{Notice: func(n uint64) []byte { return fmt.Appendf(nil, "[%d dropped]\n", n) }})
	for i := range 3 {
		fmt.Fprintf(w, "gone %d\n", i)
		if !w.Flush(5 * time.Second) { // one write each, all failing
			t.Fatal("Flush timed out")
		}
	}
	g.setFail(nil) // a new reader (a FIFO reopened)
	fmt.Fprintln(w, "back")
	if !w.Flush(5 * time.Second) {
		t.Fatal("Flush timed out")
	}
	if got, want := g.String(), "[3 dropped]\nback\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
	if dropped, _ := w.Stats(); dropped != 3 {
		t.Fatalf("Stats dropped = %d, want 3", dropped)
	}
}

func TestBatchesKeepLinesWholeAndBounded(t *testing.T) {
	g := newGate()
	w := New(g, Options{})
	fmt.Fprintln(w, "first")
	<-g.entered
	long := strings.Repeat("y", 3*pipeBuf) + "\n"
	var want strings.Builder
	want.WriteString("first\n")
	for i := range 100 {
		l := fmt.Sprintf("line %03d %s\n", i, strings.Repeat("z", 100))
		if i == 50 {
			l = long
		}
		w.Write([]byte(l))
		want.WriteString(l)
	}
	close(g.open)
	if !w.Flush(5 * time.Second) {
		t.Fatal("Flush timed out")
	}
	if g.String() != want.String() {
		t.Fatal("lines lost, torn or reordered")
	}
	g.mu.Lock()
	writes := g.writes
	g.mu.Unlock()
	// 100 lines of 110 bytes and one of 12 KiB: a handful of writes, each
	// a pipe-atomic batch except the long line.
	if writes < 4 || writes > 10 {
		t.Fatalf("%d writes for 101 lines", writes)
	}
}

func TestCloseStopsTheWriter(t *testing.T) {
	g := newGate()
	close(g.open)
	w := New(g, Options{})
	fmt.Fprintln(w, "x")
	if !w.Close(5 * time.Second) {
		t.Fatal("Close did not flush")
	}
	fmt.Fprintln(w, "after close")
	if got := g.String(); got != "x\n" {
		t.Fatalf("output %q", got)
	}
}

func TestWriteCopiesTheLine(t *testing.T) {
	g := newGate()
	w := New(g, Options{})
	buf := []byte("one\n")
	w.Write(buf)
	copy(buf, "two\n") // logrus reuses its buffer
	close(g.open)
	w.Flush(5 * time.Second)
	if got := g.String(); got != "one\n" {
		t.Fatalf("output %q", got)
	}
}

func TestFDReportsAGoneReaderWithoutKillingTheProcess(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	unix.Close(p[0])
	// The write raises SIGPIPE for this thread; the test binary, like tend,
	// must survive it (os/signal or the runtime's default for a non-stdio
	// descriptor), and the error must be EPIPE.
	_, err := FD(p[1]).Write([]byte("x\n"))
	if !errors.Is(err, unix.EPIPE) {
		t.Fatalf("error %v, want EPIPE", err)
	}
	if _, err := FD(-1).Write([]byte("x\n")); !errors.Is(err, unix.EBADF) {
		t.Fatalf("error %v, want EBADF", err)
	}
}

func TestFDWaitsOnAFullNonBlockingPipe(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(p[0]), "r")
	defer r.Close()
	defer unix.Close(p[1])
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<14) // 256 KiB, more than a pipe holds
	got := make(chan []byte)
	go func() {
		var all []byte
		buf := make([]byte, 8192)
		for len(all) < len(data) {
			time.Sleep(time.Millisecond) // a slow reader
			n, err := r.Read(buf)
			if err != nil {
				break
			}
			all = append(all, buf[:n]...)
		}
		got <- all
	}()
	n, err := FD(p[1]).Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("wrote %d of %d: %v", n, len(data), err)
	}
	if !bytes.Equal(<-got, data) {
		t.Fatal("data changed")
	}
}

func TestFlushAfterCloseDoesNotWait(t *testing.T) {
	g := newGate()
	close(g.open)
	w := New(g, Options{MaxLines: 1})
	w.Close(5 * time.Second)
	fmt.Fprintln(w, "dropped: closed")
	start := time.Now()
	if !w.Flush(5*time.Second) || time.Since(start) > time.Second {
		t.Fatalf("Flush after Close: waited %s", time.Since(start))
	}
}
