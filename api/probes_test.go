package api

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/tend-init/tend/api/apitest"
	"github.com/tend-init/tend/httpwire"
)

// wire answers raw with serve and returns the answer as it would go out.
func wire(t *testing.T, serve func(*httpwire.Request) httpwire.Response, raw string) string {
	t.Helper()
	req, err := httpwire.ReadRequest(bufio.NewReader(strings.NewReader(raw)), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	var out bytes.Buffer
	if err := httpwire.WriteResponse(&out, serve(req)); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestProbeRoutes: GET and HEAD /livez and /readyz, in text and JSON, on
// the control socket's handler and on a TCP listener's (Public).
func TestProbeRoutes(t *testing.T) {
	const text, json = "Content-Type: text/plain; charset=utf-8\r\n", "Content-Type: application/json\r\n"
	cases := []struct {
		name   string
		sup    apitest.Supervisor
		req    string // method and target
		status string
		ctype  string
		body   string // the whole body; "" for a HEAD
	}{
		{"live", apitest.Supervisor{}, "GET /livez", "200 OK", text, "ok\n"},
		{"live, HEAD", apitest.Supervisor{}, "HEAD /livez", "200 OK", text, ""},
		{"live, JSON", apitest.Supervisor{}, "GET /livez?format=json", "200 OK", json, "{\n  \"live\": true\n}\n"},
		{"live, text asked for", apitest.Supervisor{}, "GET /livez?format=text", "200 OK", text, "ok\n"},
		{"not live", apitest.Supervisor{NotLive: true}, "GET /livez", "503 Service Unavailable", text,
			"not live:\n  essential service web is max-restarts-reached (exit code 1), so tend is shutting down\n"},
		{"not live, HEAD", apitest.Supervisor{NotLive: true}, "HEAD /livez", "503 Service Unavailable", text, ""},
		{"not live, JSON", apitest.Supervisor{NotLive: true}, "GET /livez?format=json", "503 Service Unavailable", json,
			"{\n  \"live\": false,\n  \"reasons\": [\n    \"essential service web is max-restarts-reached (exit code 1), so tend is shutting down\"\n  ]\n}\n"},
		{"ready", apitest.Supervisor{ReadyOK: true}, "GET /readyz", "200 OK", text, "ok\n"},
		{"ready, JSON", apitest.Supervisor{ReadyOK: true}, "GET /readyz?format=json", "200 OK", json, "{\n  \"ready\": true\n}\n"},
		{"not ready", apitest.Supervisor{}, "GET /readyz", "503 Service Unavailable", text,
			"not ready:\n  web is not ready\n  db is crash-loop-backoff, last exit code 1\n"},
		{"not ready, JSON", apitest.Supervisor{}, "GET /readyz?format=json&verbose", "503 Service Unavailable", json,
			"{\n  \"ready\": false,\n  \"reasons\": [\n    \"web is not ready\",\n    \"db is crash-loop-backoff, last exit code 1\"\n  ]\n}\n"},
		{"not ready, HEAD", apitest.Supervisor{}, "HEAD /readyz?format=json", "503 Service Unavailable", json, ""},
		{"the supervisor does not answer", apitest.Supervisor{ProbeErr: errors.New("the supervisor did not answer in time")}, "GET /livez",
			"503 Service Unavailable", text, "not live:\n  the supervisor did not answer in time\n"},
		{"tend has shut down", apitest.Supervisor{ProbeErr: errors.New("tend has shut down")}, "GET /readyz",
			"503 Service Unavailable", text, "not ready:\n  tend has shut down\n"},
		{"a bad format", apitest.Supervisor{}, "GET /readyz?format=yaml", "400 Bad Request", json,
			"{\n  \"error\": \"format must be text or json\"\n}\n"},
		{"another method", apitest.Supervisor{}, "POST /readyz", "405 Method Not Allowed", json,
			"{\n  \"error\": \"/readyz needs GET or HEAD, not POST\"\n}\n"},
		{"HEAD /metrics", apitest.Supervisor{}, "HEAD /metrics", "200 OK", "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler(&tc.sup, nil, apitest.QuietLog())
			for where, serve := range map[string]func(*httpwire.Request) httpwire.Response{
				"control socket": h.Handle, "health_listen and metrics_listen": h.Public(true, true),
			} {
				got := wire(t, serve, tc.req+" HTTP/1.1\r\nHost: tend\r\nContent-Length: 0\r\n\r\n")
				head, body, _ := strings.Cut(got, "\r\n\r\n")
				head += "\r\n"
				if !strings.HasPrefix(head, "HTTP/1.1 "+tc.status+"\r\n") || !strings.Contains(head, tc.ctype) || body != tc.body {
					t.Errorf("%s: %q\nwant %s, %q and the body %q", where, got, tc.status, tc.ctype, tc.body)
				}
				if strings.HasPrefix(tc.status, "405") && !strings.Contains(head, "Allow: GET, HEAD\r\n") {
					t.Errorf("%s: a 405 without Allow: GET, HEAD: %q", where, got)
				}
			}
		})
	}
}

// TestPublicServesOnlyItsPaths: a TCP listener answers only the paths of
// the keys that name it; the control API behind them is a 404 there.
func TestPublicServesOnlyItsPaths(t *testing.T) {
	h := NewHandler(&apitest.Supervisor{ReadyOK: true, Healthy: true}, nil, apitest.QuietLog())
	cases := []struct {
		health, metrics bool
		path            string
		status          string
		body            string
	}{
		{true, false, "/livez", "200 OK", "ok"},
		{true, false, "/readyz", "200 OK", "ok"},
		{true, false, "/metrics", "404 Not Found", "only /livez and /readyz are served here"},
		{true, false, "/v1/health", "404 Not Found", "only /livez and /readyz are served here"},
		{true, false, "/livez/", "404 Not Found", "only /livez and /readyz are served here"},
		{false, true, "/metrics", "200 OK", "tend_reloads_total"},
		{false, true, "/livez", "404 Not Found", "only /metrics is served here"},
		{true, true, "/metrics", "200 OK", "tend_reloads_total"},
		{true, true, "/readyz", "200 OK", "ok"},
		{true, true, "/v1/services", "404 Not Found", "only /livez, /readyz and /metrics are served here"},
		{true, true, "/", "404 Not Found", "only /livez, /readyz and /metrics are served here"},
	}
	for _, tc := range cases {
		got := wire(t, h.Public(tc.health, tc.metrics), "GET "+tc.path+" HTTP/1.1\r\nHost: tend\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 "+tc.status+"\r\n") || !strings.Contains(got, tc.body) {
			t.Errorf("health %v, metrics %v: GET %s: %q; want %s with %q", tc.health, tc.metrics, tc.path, got, tc.status, tc.body)
		}
	}
}
