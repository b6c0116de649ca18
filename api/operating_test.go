package api

import (
	"bytes"
	"context"
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
