package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tend-init/tend/api"
	"github.com/tend-init/tend/api/apitest"
	"github.com/tend-init/tend/httpwire"
)

// countingTCP tells, on reached, when its accepts reach want: the
// connections dialled before then are all in their slots (or evicted),
// without the test polling the slots.
type countingTCP struct {
	*net.TCPListener
	want    int64
	n       atomic.Int64
	reached chan struct{}
}

func (c *countingTCP) AcceptTCP() (*net.TCPConn, error) {
	conn, err := c.TCPListener.AcceptTCP()
	if err == nil && c.n.Add(1) == c.want {
		close(c.reached)
	}
	return conn, err
}

// tcpTest serves handle (the API's metrics_listen answer if nil) with
// slots connections on a fresh port of 127.0.0.1 for the length of the
// test, and checks that it leaks nothing. Its listener reports on the
// returned channel once it has accepted accepts connections (never, for
// 0).
func tcpTest(t *testing.T, handle func(*httpwire.Request) httpwire.Response, slots int, accepts int64) (string, *tcpServer, <-chan struct{}, context.CancelFunc) {
	t.Helper()
	apitest.NoLeaks(t)
	l, deferErr, err := listenTCP("127.0.0.1:0")
	if err != nil || deferErr != nil {
		t.Fatal(err, deferErr)
	}
	if handle == nil {
		handle = api.NewHandler(&apitest.Supervisor{}, nil, apitest.QuietLog()).Public(false, true)
	}
	cl := &countingTCP{TCPListener: l, want: accepts, reached: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return l.Addr().String(), serveTCP(ctx, cl, "test "+l.Addr().String(), slots, handle, apitest.QuietLog()), cl.reached, cancel
}

// metricsTest is tcpTest for metrics_listen.
func metricsTest(t *testing.T, metrics func(*httpwire.Request) httpwire.Response, accepts int64) (string, *tcpServer, <-chan struct{}, context.CancelFunc) {
	t.Helper()
	return tcpTest(t, metrics, MetricsSlots, accepts)
}

const scrapeRequest = "GET /metrics HTTP/1.1\r\nHost: tend\r\nAccept: text/plain\r\n\r\n"

// scrape sends raw as one client would and reads the answer, within 5 s.
func scrape(addr, raw string) (code int, body string, took time.Duration, err error) {
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, "", time.Since(start), err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		return 0, "", time.Since(start), err
	}
	code, b, err := httpwire.ReadResponse(bufio.NewReader(conn))
	return code, string(b), time.Since(start), err
}

// dialIdleTCP opens n connections that send nothing.
func dialIdleTCP(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	return conns
}

// request is a client's whole request for path.
func request(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: tend\r\nAccept: text/plain\r\n\r\n"
}

// Issue 18: four idle TCP connections held the four metrics slots for 12 s
// each, so a scrape behind them took 11.4 s, past Prometheus' 10 s. Issue
// 19: a kubelet's probe must be answered within its 1 s timeoutSeconds.
func TestTCPIdleClientsCannotLockOut(t *testing.T) {
	const idleClients = 100
	probed := api.NewHandler(&apitest.Supervisor{ReadyOK: true}, nil, apitest.QuietLog())
	cases := []struct {
		name   string
		handle func(*httpwire.Request) httpwire.Response
		slots  int
		ask    map[string]string // path: what its answer holds
	}{
		{"metrics_listen", nil, MetricsSlots, map[string]string{"/metrics": "tend_reloads_total 0"}},
		{"health_listen", probed.Public(true, false), HealthSlots, map[string]string{"/livez": "ok\n", "/readyz": "ok\n"}},
		{"health_listen and metrics_listen on one address", probed.Public(true, true), HealthSlots,
			map[string]string{"/livez": "ok\n", "/readyz": "ok\n", "/metrics": "tend_reloads_total 0"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, m, accepted, _ := tcpTest(t, tc.handle, tc.slots, idleClients)
			idle := dialIdleTCP(t, addr, idleClients)
			asks := func(when string) {
				t.Helper()
				for i := range 5 {
					for path, want := range tc.ask {
						code, body, took, err := scrape(addr, request(path))
						if err != nil || code != 200 || !strings.Contains(body, want) {
							t.Fatalf("GET %s %d %s: %d %q %v after %v", path, i, when, code, body, err, took)
						}
						t.Logf("GET %s %d %s: answered in %v", path, i, when, took)
						if took > time.Second {
							t.Fatalf("GET %s %d %s took %v; want under 1 s", path, i, when, took)
						}
					}
				}
			}
			// First the kernel holds them (deferAccept): they cost tend nothing.
			asks(fmt.Sprintf("with %d idle clients that tend has not accepted yet", idleClients))
			<-accepted
			if taken, reading := m.slots.counts(); taken != tc.slots || reading != tc.slots {
				t.Fatalf("%d idle clients took %d slots, %d of them reading; want %d and %d", idleClients, taken, reading, tc.slots, tc.slots)
			}
			// Then they hold every slot, and each request closes one to make room.
			asks(fmt.Sprintf("with every slot held by one of %d idle clients", idleClients))
			var open []net.Conn
			for _, c := range idle {
				if !closedByServer(c, 200*time.Millisecond) {
					open = append(open, c)
				}
			}
			// The first request took an idle client's slot; the others found
			// one free, or took another if the one before had not yet
			// released its.
			if len(open) >= tc.slots {
				t.Fatalf("%d idle connections are open after the requests; want fewer than %d", len(open), tc.slots)
			}
			// The head deadline closes the rest without a word.
			start := time.Now()
			for _, c := range open {
				if !closedByServer(c, 2*headTimeout) {
					t.Fatalf("an idle connection outlived its head deadline (%v)", headTimeout)
				}
			}
			t.Logf("the last idle connections were closed %v after the requests", time.Since(start))
		})
	}
}

// reconnecting keeps n clients connected that send nothing: each one that
// tend closes dials again at once, until stop is closed. It returns the
// number of connections made, once every client has ended.
func reconnecting(addr string, n int, stop <-chan struct{}) (wait func() int64) {
	var (
		wg    sync.WaitGroup
		dials atomic.Int64
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil { // the backlog was full: dial again soon, as a flood would
					pause := time.NewTimer(10 * time.Millisecond)
					select {
					case <-stop:
						pause.Stop()
						return
					case <-pause.C:
					}
					continue
				}
				dials.Add(1)
				// Ends when tend closes it (eviction or head deadline), or
				// when the test stops the flood.
				closed := make(chan struct{})
				go func() {
					select {
					case <-stop:
						c.SetReadDeadline(time.Now())
					case <-closed:
					}
				}()
				c.Read(buf)
				close(closed)
				c.Close()
			}
		}()
	}
	return func() int64 { wg.Wait(); return dials.Load() }
}

func TestMetricsAnswerThroughReconnectingIdleClients(t *testing.T) {
	const idleClients = 100
	addr, _, _, _ := metricsTest(t, nil, 0)
	stop := make(chan struct{})
	wait := reconnecting(addr, idleClients, stop)
	var once sync.Once
	halt := func() int64 { once.Do(func() { close(stop) }); return wait() }
	defer halt() // before the server ends: a flood against a closed port would spin
	// For 4 s, past the deferAccept of the first clients and of those
	// that reconnected: the slots turn over while the scrapes come in.
	var slowest time.Duration
	for i := range 20 {
		time.Sleep(200 * time.Millisecond)
		code, body, took, err := scrape(addr, scrapeRequest)
		if err != nil || code != 200 {
			t.Fatalf("scrape %d with %d idle clients reconnecting: %d %q %v after %v", i, idleClients, code, body, err, took)
		}
		slowest = max(slowest, took)
	}
	dials := halt()
	t.Logf("20 scrapes answered, the slowest in %v, through %d connections of %d reconnecting idle clients", slowest, dials, idleClients)
	if slowest > time.Second {
		t.Fatalf("the slowest scrape took %v; want under 1 s", slowest)
	}
	if dials < 2*idleClients {
		t.Fatalf("%d connections of %d clients: the flood never reconnected", dials, idleClients)
	}
}

func TestMetricsBusySlotsAnswer503(t *testing.T) {
	entered := make(chan struct{}, MetricsSlots)
	release := make(chan struct{})
	var once sync.Once
	releaseAll := func() { once.Do(func() { close(release) }) }
	h := api.NewHandler(&apitest.Supervisor{}, nil, apitest.QuietLog())
	addr, _, _, _ := metricsTest(t, func(req *httpwire.Request) httpwire.Response {
		entered <- struct{}{}
		<-release
		return h.Metrics(req)
	}, 0)
	t.Cleanup(releaseAll)
	codes := make(chan int, MetricsSlots)
	for range MetricsSlots {
		go func() {
			code, _, _, _ := scrape(addr, scrapeRequest)
			codes <- code
		}()
	}
	for range MetricsSlots {
		<-entered
	}
	// Requests being answered are not evicted: the newcomer is refused at
	// once, and the accept loop does not wait for a slot.
	code, body, took, err := scrape(addr, scrapeRequest)
	if err != nil || code != 503 || !strings.Contains(body, "try again") || took > time.Second {
		t.Fatalf("with every slot answering: %d %s %v after %v", code, body, err, took)
	}
	releaseAll()
	for range MetricsSlots {
		if c := <-codes; c != 200 {
			t.Fatalf("a scrape being answered got %d", c)
		}
	}
	if code, _, _, err := scrape(addr, scrapeRequest); code != 200 {
		t.Fatalf("after the rush: %d %v", code, err)
	}
}

func TestMetricsOnlyMetricsAndTheGrammar(t *testing.T) {
	addr, _, _, _ := metricsTest(t, nil, 0)
	for _, c := range []struct {
		raw  string
		code int
		want string
	}{
		{scrapeRequest, 200, "tend_reloads_total"},
		{"GET /v1/services HTTP/1.1\r\nHost: tend\r\n\r\n", 404, "only /metrics"},
		{"POST /metrics HTTP/1.1\r\nHost: tend\r\nContent-Length: 0\r\n\r\n", 405, "needs GET"},
		{"GET /metrics HTTP/1.1\r\n\r\n", 400, "Host"},
		{"GET /metrics HTTP/1.1\r\nHost: te", 408, ""}, // half a head: the head deadline answers
	} {
		code, body, took, err := scrape(addr, c.raw)
		if err != nil || code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%q: %d %s %v, want %d with %q", c.raw, code, body, err, c.code, c.want)
		}
		if c.code == 408 && (took < headTimeout/2 || took > 2*headTimeout) {
			t.Errorf("half a head answered after %v; want about %v", took, headTimeout)
		}
	}
}

func TestMetricsStopsWithItsContext(t *testing.T) {
	addr, _, accepted, cancel := metricsTest(t, nil, 1)
	idle := dialIdleTCP(t, addr, 1)[0]
	<-accepted
	cancel()
	// The connection still reading is closed, and the port no longer
	// answers.
	if !closedByServer(idle, 10*time.Second) { // a bound for a busy machine: it is closed or it is not
		t.Fatal("a reading connection outlived the listener")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the port accepts connections after its context ended")
	}
}

// tcpPair is a connected pair over loopback: the server's end and the
// client's.
func tcpPair(t *testing.T, l *net.TCPListener) (*net.TCPConn, net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := l.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// The slots' idea of idle holds for TCP: SIOCINQ sees a request that
// arrived before its goroutine read it.
func TestSlotsTCP(t *testing.T) {
	l, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	isClosed := func(c *net.TCPConn) bool {
		_, err := c.Write([]byte("x"))
		return errors.Is(err, net.ErrClosed)
	}
	a, _ := tcpPair(t, l)
	b, bClient := tcpPair(t, l)
	c, _ := tcpPair(t, l)
	s := newSlots[*net.TCPConn](1)
	if _, ok := s.admit(a); !ok {
		t.Fatal("an empty slot did not admit")
	}
	// a has sent nothing: b takes its place.
	if _, ok := s.admit(b); !ok || !isClosed(a) {
		t.Fatal("the idle TCP connection was not evicted")
	}
	// b's request is in its socket, unread (wait for it without polling:
	// the runtime's poller calls again when b is readable).
	io.WriteString(bClient, "GET /metrics HTTP/1.1\r\n")
	raw, err := b.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Read(func(uintptr) bool { return inputWaiting(b) })
	if _, ok := s.admit(c); ok || isClosed(b) {
		t.Fatal("a TCP connection with its request waiting was evicted")
	}
}
