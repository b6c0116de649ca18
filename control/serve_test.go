package control

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/api"
	"github.com/tend-init/tend/api/apitest"
	"github.com/tend-init/tend/ctl"
	"github.com/tend-init/tend/httpwire"
	"github.com/tend-init/tend/supervise"
)

// serveTest runs a server on a fresh socket for the length of the test,
// on l's wrapper if wrap is not nil, and checks that it leaks nothing.
func serveTest(t *testing.T, sup api.Supervisor, log *logrus.Logger, wrap func(*net.UnixListener) acceptor) (string, *server) {
	t.Helper()
	apitest.NoLeaks(t)
	path := t.TempDir() + "/tend.sock"
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	var a acceptor = l
	if wrap != nil {
		a = wrap(l)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return path, serve(ctx, a, path, api.NewHandler(sup, nil, log), log)
}

const listRequest = "GET /v1/services HTTP/1.1\r\nHost: tend\r\n\r\n"

const signalBody = `{"signal":"USR1"}`

// dialIdle opens n connections that send nothing.
func dialIdle(t *testing.T, path string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	return conns
}

// closedByServer reports whether the server has closed c (without a word).
func closedByServer(c net.Conn, within time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(within))
	n, err := c.Read(make([]byte, 1))
	// A close with the client's bytes still unread is a reset, not an
	// end of file (the kernel sends RST): closed all the same.
	return n == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET))
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIdleClientsCannotLockOut(t *testing.T) {
	path, srv := serveTest(t, &apitest.Supervisor{}, apitest.QuietLog(), nil)
	idle := dialIdle(t, path, 10*maxConns)
	waitFor(t, "every idle client to be accepted", func() bool {
		taken, reading := srv.slots.counts()
		return taken == maxConns && reading == maxConns
	})
	for i := range 5 {
		start := time.Now()
		code, body, err := apitest.Ask(t, path, listRequest)
		if err != nil || code != 200 {
			t.Fatalf("request %d with %d idle clients: %d %s %v", i, len(idle), code, body, err)
		}
		t.Logf("answered in %v with every slot held by an idle client", time.Since(start))
	}
	// The oldest made room: the first idle client is gone, the last one
	// still waits (its head deadline has not passed).
	if !closedByServer(idle[0], time.Second) {
		t.Fatal("the oldest idle connection is still open")
	}
	last := idle[len(idle)-1]
	if closedByServer(last, 100*time.Millisecond) {
		t.Fatal("the newest idle connection was closed")
	}
	// And the head deadline ends it without an answer.
	start := time.Now()
	if !closedByServer(last, 5*time.Second) {
		t.Fatal("an idle connection outlived its head deadline")
	}
	t.Logf("an idle connection was closed %v after its accept", time.Since(start)+100*time.Millisecond)
}

// blockingSupervisor answers Statuses only once release is closed.
type blockingSupervisor struct {
	apitest.Supervisor
	waiting atomic.Int32
	release chan struct{}
}

func (b *blockingSupervisor) Statuses() ([]supervise.ServiceStatus, error) {
	b.waiting.Add(1)
	<-b.release
	return b.Supervisor.Statuses()
}

func TestBusySlotsAnswer503(t *testing.T) {
	sup := &blockingSupervisor{release: make(chan struct{})}
	path, _ := serveTest(t, sup, apitest.QuietLog(), nil)
	var once sync.Once
	release := func() { once.Do(func() { close(sup.release) }) }
	t.Cleanup(release)
	var wg sync.WaitGroup
	codes := make(chan int, maxConns)
	for range maxConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, _ := apitest.Ask(t, path, listRequest)
			codes <- code
		}()
	}
	waitFor(t, "every slot to be answering", func() bool { return sup.waiting.Load() == maxConns })
	// Requests being answered are not evicted: the newcomer is refused.
	code, body, err := apitest.Ask(t, path, listRequest)
	if err != nil || code != 503 || !strings.Contains(body, "try again") {
		t.Fatalf("with every slot answering: %d %s %v", code, body, err)
	}
	var out, errw strings.Builder
	if code := ctl.Main([]string{"--socket", path, "status"}, &out, &errw); code != 1 || !strings.Contains(errw.String(), "503 Service Unavailable: every connection slot") {
		t.Fatalf("tend ctl with every slot answering: exit %d\n%s%s", code, out.String(), errw.String())
	}
	release()
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("a request being answered got %d", c)
		}
	}
	if code, _, err := apitest.Ask(t, path, listRequest); code != 200 {
		t.Fatalf("after the rush: %d %v", code, err)
	}
}

func TestHeadDeadline(t *testing.T) {
	path, _ := serveTest(t, &apitest.Supervisor{}, apitest.QuietLog(), nil)
	start := time.Now()
	code, body, err := apitest.Ask(t, path, "GET /v1/services HTTP/1.1\r\nHost: te")
	took := time.Since(start)
	if err != nil || code != 408 || took > 5*time.Second {
		t.Fatalf("half a head: %d %s %v after %v", code, body, err, took)
	}
	t.Logf("half a head was answered 408 after %v", took)
}

// flakyListener fails its accepts with EMFILE while failing is set.
type flakyListener struct {
	*net.UnixListener
	failing atomic.Bool
	calls   atomic.Int64
}

func (f *flakyListener) AcceptUnix() (*net.UnixConn, error) {
	f.calls.Add(1)
	if f.failing.Load() {
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", unix.EMFILE)}
	}
	return f.UnixListener.AcceptUnix()
}

// lockedBuffer collects a logger's output while the server writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestAcceptErrorsAreRetried(t *testing.T) {
	var logged lockedBuffer
	log := logrus.New()
	log.Out = &logged
	fl := &flakyListener{}
	path, srv := serveTest(t, &apitest.Supervisor{}, log, func(l *net.UnixListener) acceptor {
		fl.UnixListener = l
		return fl
	})
	idle := dialIdle(t, path, 1)[0]
	waitFor(t, "the idle client to be accepted", func() bool { _, r := srv.slots.counts(); return r == 1 })

	// The loop sits in an accept that succeeds; every later one fails.
	fl.failing.Store(true)
	if code, _, err := apitest.Ask(t, path, listRequest); code != 200 {
		t.Fatalf("the request in the accept under way: %d %v", code, err)
	}
	// Out of fds, the idle client's is the one to give up.
	if !closedByServer(idle, 5*time.Second) {
		t.Fatal("out of fds, an idle connection was kept")
	}
	// A request now waits in the backlog while the accepts fail.
	type answer struct {
		code int
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		code, _, err := apitest.Ask(t, path, listRequest)
		answered <- answer{code, err}
	}()
	before := fl.calls.Load()
	time.Sleep(500 * time.Millisecond)
	calls := fl.calls.Load() - before
	t.Logf("%d failed accepts in 500ms", calls)
	if calls > 20 {
		t.Fatalf("%d accepts in 500ms: no backoff", calls)
	}
	select {
	case a := <-answered:
		t.Fatalf("answered while every accept failed: %+v", a)
	default:
	}
	fl.failing.Store(false)
	start := time.Now()
	select {
	case a := <-answered:
		if a.code != 200 {
			t.Fatalf("after the accepts recovered: %+v", a)
		}
		t.Logf("answered %v after the accepts recovered", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("the socket never answered again after its accepts failed")
	}
	// A second, short burst within the minute is counted, not logged. An
	// idle client ends the accept under way; the ones after it fail.
	fl.failing.Store(true)
	dialIdle(t, path, 1)
	waitFor(t, "a failed accept", func() bool { return fl.calls.Load() > before+calls+3 })
	fl.failing.Store(false)
	time.Sleep(100 * time.Millisecond) // past the 5..40 ms backoff, into an accept that succeeds
	if code, _, err := apitest.Ask(t, path, listRequest); code != 200 {
		t.Fatalf("after the second burst: %d %v", code, err)
	}
	out := logged.String()
	if n := strings.Count(out, "too many open files"); n != 1 {
		t.Fatalf("the failure was logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, "accepting again after"); n != 1 {
		t.Fatalf("the end of a burst was logged %d times, want once:\n%s", n, out)
	}
}

// socketPair is a connected pair: the server's end and the client's.
func socketPair(t *testing.T) (*net.UnixConn, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	client := os.NewFile(uintptr(fds[1]), "")
	t.Cleanup(func() { c.Close(); client.Close() })
	return c.(*net.UnixConn), client
}

func TestSlots(t *testing.T) {
	isClosed := func(c *net.UnixConn) bool {
		_, err := c.Write([]byte("x"))
		return errors.Is(err, net.ErrClosed)
	}
	conns := make([]*net.UnixConn, 6)
	clients := make([]*os.File, 6)
	for i := range conns {
		conns[i], clients[i] = socketPair(t)
	}
	s := newSlots[*net.UnixConn](2)
	s0, ok0 := s.admit(conns[0])
	s1, ok1 := s.admit(conns[1])
	if !ok0 || !ok1 || !s.answering(s1) {
		t.Fatal("two slots did not admit two connections")
	}
	// Full: the idle reading one (0) makes room; the answering one stays.
	s2, ok2 := s.admit(conns[2])
	if !ok2 || !isClosed(conns[0]) || isClosed(conns[1]) || s.answering(s0) {
		t.Fatal("the idle connection was not the one evicted")
	}
	s.release(s0) // its goroutine ends: the place was given away already
	// A client sending its request briskly keeps its slot...
	s2.got.Store(10)
	if _, ok := s.admit(conns[3]); ok || isClosed(conns[2]) {
		t.Fatal("a connection sending its request was evicted")
	}
	// ... and a slow one does not.
	s2.admitted = time.Now().Add(-2 * slowRequest)
	s3, ok3 := s.admit(conns[3])
	if !ok3 || !isClosed(conns[2]) {
		t.Fatal("a slow request was not evicted")
	}
	s.release(s2)
	// A request waiting in the socket, not read yet, is not idle.
	clients[3].WriteString("GET / HTTP/1.1\r\n")
	if _, ok := s.admit(conns[4]); ok || isClosed(conns[3]) {
		t.Fatal("a connection with its request waiting was evicted")
	}
	// Every slot answering: nobody is evicted.
	if !s.answering(s3) {
		t.Fatal("s3 was evicted")
	}
	if _, ok := s.admit(conns[4]); ok {
		t.Fatal("admitted with every slot answering")
	}
	s.release(s1)
	if taken, reading := s.counts(); taken != 1 || reading != 0 {
		t.Fatalf("taken %d reading %d, want 1 and 0", taken, reading)
	}
	// An answered connection waiting for its client to close goes first,
	// even before an older idle one.
	s4, _ := s.admit(conns[4])
	s4.got.Store(10)
	s.lingering(s4)
	s.release(s3)
	s5, ok5 := s.admit(conns[5])
	if !ok5 || !s.evictOne() || !isClosed(conns[4]) || isClosed(conns[5]) {
		t.Fatal("evictOne did not close the answered connection first")
	}
	if taken, _ := s.counts(); taken != 1 {
		t.Fatalf("taken %d after evictOne, want 1", taken)
	}
	s.closeReading()
	if !isClosed(conns[5]) || s.answering(s5) {
		t.Fatal("closeReading left a reading connection open")
	}
	if _, ok := s.admit(conns[3]); ok {
		t.Fatal("admitted after closeReading")
	}
}

func TestExpectContinueOnTheSocket(t *testing.T) {
	path, _ := serveTest(t, &apitest.Supervisor{}, apitest.QuietLog(), nil)
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(signalBody))
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q %v", line, err)
	}
	if blank, _ := r.ReadString('\n'); blank != "\r\n" {
		t.Fatalf("the interim answer did not end: %q", blank)
	}
	io.WriteString(conn, signalBody)
	code, body, err := httpwire.ReadResponse(r)
	if err != nil || code != 200 || !strings.Contains(string(body), "SIGUSR1") {
		t.Fatalf("after the body: %d %s %v", code, body, err)
	}
}

func TestEarlyAnswerIsRead(t *testing.T) {
	path, _ := serveTest(t, &apitest.Supervisor{}, apitest.QuietLog(), nil)
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	// The head is refused while the body is still coming: the answer
	// must reach the client, not be lost to a reset.
	const n = 3 * httpwire.MaxBody
	written := make(chan error, 1)
	go func() {
		_, err := io.WriteString(conn, fmt.Sprintf("POST /v1/reload HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s", n, strings.Repeat("x", n)))
		written <- err
	}()
	code, body, err := httpwire.ReadResponse(bufio.NewReader(conn))
	if err != nil || code != 413 {
		t.Fatalf("%d %s %v", code, body, err)
	}
	<-written
}

func TestServeKeepsALiveSocket(t *testing.T) {
	apitest.NoLeaks(t)
	path := t.TempDir() + "/tend.sock"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := api.NewHandler(&apitest.Supervisor{}, nil, apitest.QuietLog())
	if _, err := Serve(ctx, path, h, apitest.QuietLog()); err != nil {
		t.Fatal(err)
	}
	if _, err := Serve(ctx, path, h, apitest.QuietLog()); err == nil || !strings.Contains(err.Error(), "another tend") {
		t.Fatalf("a second tend took over a live socket: %v", err)
	}
	// A stale socket file (nobody listening) is replaced.
	stale := t.TempDir() + "/stale.sock"
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	if _, err := Serve(ctx, stale, h, apitest.QuietLog()); err != nil {
		t.Fatalf("a stale socket was not replaced: %v", err)
	}
	if code, _, err := apitest.Ask(t, stale, listRequest); err != nil || code != 200 {
		t.Fatalf("after replacing the stale socket: %d %v", code, err)
	}
}
