package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tend-init/tend/api/apitest"
	"github.com/tend-init/tend/control"
	"github.com/tend-init/tend/ctl"
	"github.com/tend-init/tend/supervise"
)

// serveSocket serves sup's API on a fresh control socket for the length
// of the test, and checks that it leaks nothing.
func serveSocket(t *testing.T, sup Supervisor) string {
	t.Helper()
	apitest.NoLeaks(t)
	path := t.TempDir() + "/tend.sock"
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := control.Serve(ctx, path, NewHandler(sup, nil, apitest.QuietLog()), apitest.QuietLog()); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLogsResource(t *testing.T) {
	sup := &apitest.Supervisor{}
	at := time.Now()
	for i, l := range []string{"one", "two", "three"} {
		sup.LogsOf().Add("web", "stdout", at.Add(time.Duration(i)), []byte(l))
	}
	path := serveSocket(t, sup)
	cases := []struct {
		target string
		code   int
		want   string
	}{
		{"/v1/services/web/logs", 200, `"line": "three"`},
		{"/v1/services/web/logs?n=1", 200, `"line": "three"`},
		{"/v1/logs?n=2", 200, `"line": "two"`},
		{"/v1/services/nope/logs", 404, "no such service"},
		{"/v1/services/web/logs?n=x", 400, "n must be a number"},
		{"/v1/services/web/logs?n=-1", 400, "n must be a number"},
		{"/v1/services/web/logs?n=10001", 400, "n must be a number"},
		{"/v1/services/web/logs?follow=maybe", 400, "follow must be"},
		{"/v1/services/web/logs?n=%zz", 400, "malformed query"},
	}
	for _, c := range cases {
		code, body, err := apitest.Ask(t, path, "GET "+c.target+" HTTP/1.1\r\nHost: tend\r\n\r\n")
		if err != nil || code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d %v\n%s\nwant %d with %q", c.target, code, err, body, c.code, c.want)
		}
	}
	if _, body, _ := apitest.Ask(t, path, "GET /v1/services/web/logs?n=1 HTTP/1.1\r\nHost: tend\r\n\r\n"); strings.Contains(body, `"two"`) {
		t.Errorf("n=1 gave more than one line: %s", body)
	}
}

// TestFollowStreams follows logs through tend ctl: the kept lines, then
// the new ones as they come; the stream ends when the server stops.
func TestFollowStreams(t *testing.T) {
	sup := &apitest.Supervisor{}
	sup.LogsOf().Add("web", "stdout", time.Now(), []byte("before"))
	apitest.NoLeaks(t)
	path := t.TempDir() + "/tend.sock"
	ctx, cancel := context.WithCancel(context.Background())
	answered, err := control.Serve(ctx, path, NewHandler(sup, nil, apitest.QuietLog()), apitest.QuietLog())
	if err != nil {
		t.Fatal(err)
	}
	var out, errw syncBuffer
	done := make(chan int)
	go func() { done <- ctl.Main([]string{"--socket", path, "logs", "-f", "web"}, &out, &errw) }()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; ; i++ {
		sup.LogsOf().Add("web", "stderr", time.Now(), []byte("after"))
		time.Sleep(20 * time.Millisecond)
		if strings.Contains(out.String(), "after") || time.Now().After(deadline) {
			break
		}
	}
	cancel()
	if !answered(time.Second) {
		t.Error("requests still in flight after the socket closed")
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("tend ctl logs -f: exit %d: %s", code, errw.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end when the server stopped")
	}
	if got := out.String(); !strings.Contains(got, "web | before\n") || !strings.Contains(got, "web | after\n") {
		t.Fatalf("followed output:\n%s", got)
	}
}

func TestEventsAndMetricsResources(t *testing.T) {
	sup := &apitest.Supervisor{Events: supervise.NewEvents()}
	apitest.NoLeaks(t)
	path := t.TempDir() + "/tend.sock"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := control.Serve(ctx, path, NewHandler(sup, nil, apitest.QuietLog()), apitest.QuietLog()); err != nil {
		t.Fatal(err)
	}
	var out, errw syncBuffer
	done := make(chan int)
	go func() { done <- ctl.Main([]string{"--socket", path, "events"}, &out, &errw) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "db running → stopping") && time.Now().Before(deadline) {
		sup.Events.Publish(supervise.Happening{Time: time.Now(), Kind: supervise.KindState, Service: "db", From: supervise.Running, To: supervise.Stopping, Reason: "operator stop"})
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "db running → stopping: operator stop") {
		t.Fatalf("events: %q %s", out.String(), errw.String())
	}
	code, body, err := apitest.Ask(t, path, "GET /metrics HTTP/1.1\r\nHost: tend\r\n\r\n")
	if err != nil || code != 200 || !strings.Contains(body, "tend_reloads_total 0") {
		t.Fatalf("GET /metrics: %d %v %q", code, err, body)
	}
	if code, _, _ := apitest.Ask(t, path, "POST /metrics HTTP/1.1\r\nHost: tend\r\nContent-Length: 0\r\n\r\n"); code != 405 {
		t.Fatalf("POST /metrics: %d, want 405", code)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("tend ctl events did not end with the server")
	}
}

// overlapSupervisor keeps a line between FollowLogs and Logs: it is both
// followed and kept, which the stream must send once. Its time is two
// hours back: the clock was set back.
type overlapSupervisor struct{ *apitest.Supervisor }

func (o overlapSupervisor) FollowLogs(name string) (*supervise.Follower, error) {
	f, err := o.Supervisor.FollowLogs(name)
	o.LogsOf().Add("web", "stdout", time.Now().Add(-2*time.Hour), []byte("in both"))
	return f, err
}

// TestFollowOrdersBySeqNotTime is issue 18: lines are ordered and told
// apart by their seq, so a clock set back neither hides new lines from a
// follower nor sends one twice.
func TestFollowOrdersBySeqNotTime(t *testing.T) {
	sup := &apitest.Supervisor{}
	at := time.Now()
	for i := range 3 {
		sup.LogsOf().Add("web", "stdout", at.Add(time.Duration(i)*time.Second), fmt.Appendf(nil, "kept %d", i))
	}
	apitest.NoLeaks(t)
	path := t.TempDir() + "/tend.sock"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := control.Serve(ctx, path, NewHandler(overlapSupervisor{sup}, nil, apitest.QuietLog()), apitest.QuietLog()); err != nil {
		t.Fatal(err)
	}
	var out, errw syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- ctl.Main([]string{"--socket", path, "--json", "logs", "-f", "-n", "3", "web"}, &out, &errw)
	}()
	waitFor := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), want); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in what was followed:\n%s%s", want, out.String(), errw.String())
			}
		}
	}
	waitFor(`"in both"`)
	for i := range 6 { // an hour before the kept lines: the clock went back
		sup.LogsOf().Add("web", "stdout", at.Add(-time.Hour+time.Duration(i)*time.Second), fmt.Appendf(nil, "new %d", i))
	}
	waitFor(`"new 5"`)
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errw.String())
	}
	var got []string
	var last uint64
	for _, raw := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l struct {
			Seq  uint64 `json:"seq"`
			Line string `json:"line"`
		}
		if err := json.Unmarshal([]byte(raw), &l); err != nil || l.Seq <= last {
			t.Fatalf("line %q (%v) after seq %d", raw, err, last)
		}
		last = l.Seq
		got = append(got, l.Line)
	}
	if want := "kept 1, kept 2, in both, new 0, new 1, new 2, new 3, new 4, new 5"; strings.Join(got, ", ") != want {
		t.Fatalf("followed %q\nwant %s", got, want)
	}
}

// TestFollowTakesABurstWhole: a client that reads as fast as it can gets
// a burst of 20,000 lines, added without a pause, whole and in order.
// Before, the follower's channel of 1,024 lines overflowed in the burst,
// and it was dropped however fast it read.
func TestFollowTakesABurstWhole(t *testing.T) {
	const burst = 20000
	sup := &apitest.Supervisor{}
	sup.LogsOf().Add("web", "stdout", time.Now(), []byte("kept"))
	apitest.NoLeaks(t)
	path := t.TempDir() + "/tend.sock"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := control.Serve(ctx, path, NewHandler(sup, nil, apitest.QuietLog()), apitest.QuietLog()); err != nil {
		t.Fatal(err)
	}
	var out, errw syncBuffer
	done := make(chan int, 1)
	go func() { done <- ctl.Main([]string{"--socket", path, "logs", "-f", "-n", "1", "web"}, &out, &errw) }()
	waitFor := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), want); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) || errw.String() != "" {
				t.Fatalf("no %q in what was followed (%d bytes); stderr %q", want, len(out.String()), errw.String())
			}
		}
	}
	waitFor("web | kept\n")
	for i := range burst {
		sup.LogsOf().Add("web", "stdout", time.Now(), fmt.Appendf(nil, "%d", i))
	}
	waitFor(fmt.Sprintf("web | %d\n", burst-1))
	cancel()
	if code := <-done; code != 0 || errw.String() != "" {
		t.Fatalf("exit %d, stderr %q", code, errw.String())
	}
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != burst+1 {
		t.Fatalf("followed %d lines, want %d", len(got), burst+1)
	}
	for i, line := range got[1:] {
		if !strings.HasSuffix(line, fmt.Sprintf(" web | %d", i)) { // after its time
			t.Fatalf("line %d is %q", i+1, line)
		}
	}
}

// gatedWriter holds every Write until open is called: a reader that
// stopped reading.
type gatedWriter struct {
	first, gate chan struct{}
	once        sync.Once
	buf         syncBuffer
}

func newGatedWriter() *gatedWriter {
	return &gatedWriter{first: make(chan struct{}), gate: make(chan struct{})}
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.first) })
	<-g.gate
	return g.buf.Write(p)
}

// TestDroppedStreamIsTold is issue 18: a follower that falls too far
// behind is told so before its stream ends, and tend ctl says it on
// stderr and exits 3, where a stream that tend ends stays exit 0
// (TestFollowStreams).
func TestDroppedStreamIsTold(t *testing.T) {
	pad := strings.Repeat("x", 200)
	flood := func(line func(i int) []byte) func(sup *apitest.Supervisor) {
		return func(sup *apitest.Supervisor) {
			for i := range 200000 {
				sup.LogsOf().Add("web", "stdout", time.Now(), line(i))
			}
		}
	}
	short := func(i int) []byte { return fmt.Appendf(nil, "%d", i) }
	long := func(i int) []byte { return fmt.Appendf(nil, "%06d %s", i, pad) } // 207 bytes
	// A log follower is dropped past 65,536 lines or 4 MiB of their text
	// (supervise's followLines and followBytes), an events subscriber
	// past 1,024 events; behind counts the one that did not fit.
	cases := []struct {
		name   string
		args   []string
		flood  func(sup *apitest.Supervisor)
		behind int
		what   string
	}{
		{"logs", []string{"logs", "-f", "-n", "1", "web"}, flood(short), 65536 + 1, "lines"},
		{"logs --json", []string{"--json", "logs", "-f", "-n", "1", "web"}, flood(short), 65536 + 1, "lines"},
		{"logs --json, long lines", []string{"--json", "logs", "-f", "-n", "1", "web"}, flood(long), 4<<20/207 + 1, "lines"},
		{"events", []string{"events"}, func(sup *apitest.Supervisor) {
			for range 20000 {
				sup.Events.Publish(supervise.Happening{Time: time.Now(), Kind: supervise.KindReload, Reason: pad})
			}
		}, 1024, "events"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sup := &apitest.Supervisor{Events: supervise.NewEvents()}
			sup.LogsOf().Add("web", "stdout", time.Now(), []byte("kept"))
			path := serveSocket(t, sup)
			out, errw := newGatedWriter(), &syncBuffer{}
			done := make(chan int)
			go func() { done <- ctl.Main(append([]string{"--socket", path}, c.args...), out, errw) }()
			// The stream is up once tend ctl writes (and is held): the kept
			// line, or one of the events published until then.
			for waiting := true; waiting; {
				select {
				case <-out.first:
					waiting = false
				case <-time.After(20 * time.Millisecond):
					sup.Events.Publish(supervise.Happening{Time: time.Now(), Kind: supervise.KindReload, Reason: "hello"})
				}
			}
			c.flood(sup)
			close(out.gate)
			var code int
			select {
			case code = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("tend ctl did not end after it was dropped")
			}
			want := fmt.Sprintf("dropped: %d %s behind", c.behind, c.what)
			if wantErr := "tend ctl: " + want + " (the reader was too slow)\n"; code != 3 || errw.String() != wantErr {
				t.Fatalf("exit %d, stderr %q; want 3 and %q", code, errw.String(), wantErr)
			}
			if strings.HasPrefix(c.name, "logs --json") {
				lines := strings.Split(strings.TrimSpace(out.buf.String()), "\n")
				var d map[string]any
				if err := json.Unmarshal([]byte(lines[len(lines)-1]), &d); err != nil || d["dropped"] != true || d["behind"] != float64(c.behind) || d["reason"] != want {
					t.Fatalf("last object %q (%v)", lines[len(lines)-1], err)
				}
			}
		})
	}
}

// syncBuffer is a bytes.Buffer a test reads while a client writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
