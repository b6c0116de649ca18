package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/tend-init/tend/api/apitest"
	"github.com/tend-init/tend/httpwire"
)

func TestAPI(t *testing.T) {
	cases := []struct {
		method, path, body string
		want               int
		contains           string
	}{
		{"GET", "/v1/services", "", 200, `"name": "web"`},
		{"GET", "/v1/services/web", "", 200, `"pid": 42`},
		{"GET", "/v1/services/nope", "", 404, `no such service`},
		{"POST", "/v1/services", "", 405, `needs GET`},
		{"POST", "/v1/services/web/stop", "", 200, `"state": "running"`},
		{"POST", "/v1/services/web/restart", "", 200, `"name": "web"`},
		{"POST", "/v1/services/web/start", "", 409, `running`},
		{"GET", "/v1/services/web/stop", "", 405, `needs POST`},
		{"POST", "/v1/services/nope/stop", "", 404, `no such service`},
		{"POST", "/v1/services/web/explode", "", 404, `no such action`},
		{"POST", "/v1/services/web/reopen", "", 200, `"file": "/var/log/web.log"`},
		{"POST", "/v1/reopen", "", 200, `"reopened": [`},
		{"GET", "/v1/reopen", "", 405, `needs POST`},
		{"POST", "/v1/services/nope/reopen", "", 404, `no such service`},
		{"POST", "/v1/services/web/signal", `{"signal":"USR1"}`, 200, `SIGUSR1`},
		{"POST", "/v1/services/web/signal", `{"signal":15}`, 200, `SIGTERM`},
		{"POST", "/v1/services/web/signal", `{"signal":"WHAT"}`, 400, `unknown signal`},
		{"POST", "/v1/services/web/signal", `{"signal":"USR1"`, 400, `invalid JSON`},
		{"POST", "/v1/services/web/signal", `{"sig":"USR1"}`, 400, `unknown field`},
		{"POST", "/v1/services/web/signal", ``, 400, `empty body`},
		{"POST", "/v1/services/web/signal", `{"signal":"USR1"} {}`, 400, `more than one`},
		{"POST", "/v1/services/web/signal", `[1,2]`, 400, `invalid JSON`},
		{"POST", "/v1/services/nope/signal", `{"signal":"USR1"}`, 404, `no such service`},
		{"POST", "/v1/reload", "", 422, `services.x.colour: unknown key`},
		{"POST", "/v1/shutdown", "", 202, `shutting down`},
		{"GET", "/v1/health", "", 503, `web is not ready`},
		{"POST", "/v1/poweroff", "", 409, `VM mode`},
		{"GET", "/v2/services", "", 404, `no such resource`},
		{"GET", "/", "", 404, `no such resource`},
		{"DELETE", "/v1/reload", "", 405, `needs POST`},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: tend\r\nContent-Length: %d\r\n\r\n%s", c.method, c.path, len(c.body), c.body)
			code, body := roundTrip(t, &apitest.Supervisor{}, raw)
			if code != c.want || !strings.Contains(body, c.contains) {
				t.Fatalf("%d %s, want %d containing %q", code, body, c.want, c.contains)
			}
		})
	}
}

// roundTrip parses raw as the server does, answers it, and parses the
// answer as tend ctl does.
func roundTrip(t *testing.T, sup Supervisor, raw string) (int, string) {
	t.Helper()
	code, body, _ := exchange(t, sup, raw)
	return code, body
}

// exchange is roundTrip that also returns the interim answer sent before
// the body ("" for none). It fails t if the body is read before the
// interim answer of an `Expect: 100-continue` was written.
func exchange(t testing.TB, sup Supervisor, raw string) (int, string, string) {
	t.Helper()
	var interim bytes.Buffer
	in := io.Reader(strings.NewReader(raw))
	if head, body, ok := strings.Cut(raw, "\r\n\r\n"); ok {
		w := &watchedReader{r: strings.NewReader(body), interim: &interim, t: t, expect: expectsContinue(head)}
		in = io.MultiReader(strings.NewReader(head+"\r\n\r\n"), w)
	}
	var resp httpwire.Response
	// A buffer of the smallest size bufio allows, so that the body is not
	// read ahead with the head.
	var req *httpwire.Request
	req, err := httpwire.ReadRequest(bufio.NewReaderSize(in, 16), func(sendContinue bool) error {
		if sendContinue {
			interim.WriteString(httpwire.ContinueLine)
		}
		return nil
	})
	if err != nil {
		var he *httpwire.Error
		if !errors.As(err, &he) {
			return 0, err.Error(), interim.String()
		}
		resp = httpwire.ErrorResponse(he.Code, he.Msg)
	} else {
		resp = NewHandler(sup, nil, apitest.QuietLog()).Handle(req)
	}
	var out bytes.Buffer
	out.WriteString(interim.String())
	if err := httpwire.WriteResponse(&out, resp); err != nil {
		t.Fatal(err)
	}
	wire := out.String()
	if req != nil && req.Method == "HEAD" && resp.Head {
		// The head alone: read it as a GET's, with the body it announces.
		if !strings.HasSuffix(wire, "\r\n\r\n") {
			t.Fatalf("a HEAD answer with a body: %q", wire)
		}
		resp.Head = false
		out.Reset()
		httpwire.WriteResponse(&out, resp)
		full := out.String()
		if !strings.HasPrefix(full, strings.TrimPrefix(wire, interim.String())) {
			t.Fatalf("the HEAD answer %q is not the head of the GET answer %q", wire, full)
		}
		wire = interim.String() + full
		out.Reset()
		out.WriteString(wire)
	}
	code, answer, err := httpwire.ReadResponse(bufio.NewReader(&out))
	if err != nil {
		t.Fatalf("unreadable answer %q: %v", wire, err)
	}
	// Every answer is JSON but the text of /metrics, /livez and /readyz.
	text := req != nil && (req.Path == "/metrics" || req.Path == "/livez" || req.Path == "/readyz") &&
		strings.Contains(wire, "Content-Type: text/plain") && (code == 200 || code == 503)
	if !text && (!json.Valid(answer) || !strings.Contains(wire, "Content-Type: application/json")) {
		t.Fatalf("not a JSON answer: %q", wire)
	}
	return code, string(answer), interim.String()
}

// expectsContinue: does this head (CRLF lines) ask an HTTP/1.1 server for
// a 100 Continue?
func expectsContinue(head string) bool {
	lines := strings.Split(head, "\r\n")
	if !strings.HasSuffix(lines[0], " HTTP/1.1") {
		return false
	}
	for _, l := range lines[1:] {
		name, value, err := httpwire.ParseHeaderLine(l)
		if err == nil && strings.EqualFold(name, "expect") && strings.EqualFold(value, "100-continue") {
			return true
		}
	}
	return false
}

// watchedReader is a request's body: it fails the test when it is read
// before the "100 Continue" its request asked for.
type watchedReader struct {
	r       io.Reader
	interim *bytes.Buffer
	t       testing.TB
	expect  bool
}

func (w *watchedReader) Read(p []byte) (int, error) {
	if w.expect && w.interim.Len() == 0 {
		w.t.Fatalf("the body was read before 100 Continue was sent")
	}
	return w.r.Read(p)
}

func TestHealthy(t *testing.T) {
	if code, body := roundTrip(t, &apitest.Supervisor{Healthy: true}, "GET /v1/health HTTP/1.1\r\nHost: tend\r\n\r\n"); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
}

const signalBody = `{"signal":"USR1"}`

func TestMalformedRequests(t *testing.T) {
	big := `{"signal":"` + strings.Repeat("A", httpwire.MaxBody) + `"}`
	cases := []struct {
		name string
		raw  string
		want int
	}{
		{"body over the limit", fmt.Sprintf("POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s", len(big), big), 413},
		{"HTTP/2", "GET /v1/services HTTP/2.0\r\nHost: t\r\n\r\n", 505},
		{"HTTP/1.10", "GET /v1/services HTTP/1.10\r\nHost: t\r\n\r\n", 400},
		{"no version", "GET /v1/services\r\n\r\n", 400},
		{"lower-case method", "get /v1/services HTTP/1.1\r\nHost: t\r\n\r\n", 405},
		{"method not a token", "G(T /v1/services HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"header without colon", "GET /v1/services HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", 400},
		{"space before colon", "GET /v1/services HTTP/1.1\r\nHost : t\r\n\r\n", 400},
		{"obsolete folding", "GET /v1/services HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400},
		{"negative length", "GET /v1/services HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400},
		{"length with a plus", "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nContent-Length: +17\r\n\r\n" + signalBody, 400},
		{"length as a list", "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nContent-Length: 17, 17\r\n\r\n" + signalBody, 400},
		{"length in hex", "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nContent-Length: 0x11\r\n\r\n" + signalBody, 400},
		{"lengths that differ", "GET /v1/services HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
		{"lengths that agree", "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\nContent-Length: 017\r\n\r\n" + signalBody, 200},
		{"length beyond int64", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n", 413},
		{"body shorter than its length", "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{}", 400},
		{"no Host in 1.1", "GET /v1/services HTTP/1.1\r\n\r\n", 400},
		{"no Host in absolute-form", "GET http://tend/v1/services HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET /v1/services HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
		{"bad Host", "GET /v1/services HTTP/1.1\r\nHost: a b/c\r\n\r\n", 400},
		{"empty Host", "GET /v1/services HTTP/1.1\r\nHost:\r\n\r\n", 200},
		{"no Host in 1.0", "GET /v1/services HTTP/1.0\r\n\r\n", 200},
		{"chunked", "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"sig\r\nc;ext=1\r\nnal\":\"USR1\"}\r\n0\r\nX-Trailer: 1\r\n\r\n", 200},
		{"chunked, upper-case hex and name", "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n11\r\n" + signalBody + "\r\n0\r\n\r\n", 200},
		{"chunked and a length", "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n" + signalBody + "\r\n0\r\n\r\n", 400},
		{"gzip then chunked", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
		{"chunked not last", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400},
		{"empty Transfer-Encoding", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: , \r\n\r\n", 400},
		{"chunked in 1.0", "POST /v1/reload HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"chunk size not hex", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n", 400},
		{"chunk size with a sign", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size too long", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0000000005\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk longer than its size", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", 400},
		{"chunked body ends early", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 400},
		{"chunked over the limit", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("8000\r\n"+strings.Repeat("a", 0x8000)+"\r\n", 3) + "0\r\n\r\n", 413},
		{"chunk framing over the limit", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + strings.Repeat("1;xxxxxxxxxxxxxxxxxxxxxxxxx\r\na\r\n", 1000) + "0\r\n\r\n", 413},
		{"bad trailer", "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n" + signalBody + "\r\n0\r\nBad Trailer\r\n\r\n", 400},
		{"unknown expectation", "POST /v1/reload HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\n\r\n", 417},
		{"bad escape", "GET /v1/services/%zz HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"head over the limit", "GET /v1/services HTTP/1.1\r\nX: " + strings.Repeat("a", httpwire.MaxHeader) + "\r\n\r\n", 431},
		{"too many header lines", "GET /v1/services HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", 100) + "\r\n", 431},
		{"NUL in the target", "GET /v1/ser\x00vices HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"stray CR", "GET /v1/services HTTP/1.1\r\nHost: t\rX: 1\r\n\r\n", 400},
		{"fragment", "GET /v1/services#x HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"non-ASCII path", "GET /v1/services/caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"absolute-form with a query", "GET http://tend/v1/services/web?x=1 HTTP/1.1\r\nHost: tend\r\n\r\n", 200},
		{"absolute-form POST", "POST http://localhost/v1/shutdown HTTP/1.1\r\nHost: localhost\r\n\r\n", 202},
		{"absolute-form, upper-case scheme", "GET HTTP://localhost:80/v1/services HTTP/1.1\r\nHost: localhost\r\n\r\n", 200},
		{"absolute-form without a path", "GET http://localhost HTTP/1.1\r\nHost: localhost\r\n\r\n", 404},
		{"absolute-form without a host", "GET http:///v1/services HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"absolute-form with userinfo", "GET http://u@localhost/v1/services HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"another scheme", "GET ftp://localhost/v1/services HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"authority-form", "CONNECT localhost:80 HTTP/1.1\r\nHost: t\r\n\r\n", 400},
		{"escaped slash", "GET /v1/services/web%2Fstop HTTP/1.1\r\nHost: t\r\n\r\n", 404},
		{"bare LF lines", "GET /v1/services HTTP/1.1\nHost: t\n\n", 200},
		{"empty lines first", "\r\n\r\nGET /v1/services HTTP/1.1\r\nHost: t\r\n\r\n", 200},
		{"cut in the request line", "GET /v1/services", 400},
		{"cut in the head", "GET /v1/services HTTP/1.1\r\nHost: t\r\n", 400},
	}
	for _, c := range cases {
		code, body, interim := exchange(t, &apitest.Supervisor{}, c.raw)
		if code != c.want || interim != "" {
			t.Errorf("%s: %d %s (interim %q), want %d", c.name, code, body, interim, c.want)
		}
	}
}

func TestExpectContinue(t *testing.T) {
	head := "POST /v1/services/web/signal %s\r\nHost: t\r\nContent-Length: %d\r\nExpect: %s\r\n\r\n%s"
	cases := []struct {
		name, version, expect, body string
		want                        int
		interim                     bool
	}{
		{"1.1", "HTTP/1.1", "100-continue", signalBody, 200, true},
		{"any case", "HTTP/1.1", "100-Continue", signalBody, 200, true},
		{"1.0 is not told", "HTTP/1.0", "100-continue", signalBody, 200, false},
		{"too large: the final answer at once", "HTTP/1.1", "100-continue", strings.Repeat(" ", httpwire.MaxBody+1), 413, false},
		{"other expectation", "HTTP/1.1", "something", signalBody, 417, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, interim := exchange(t, &apitest.Supervisor{}, fmt.Sprintf(head, c.version, len(c.body), c.expect, c.body))
			if code != c.want || (interim == httpwire.ContinueLine) != c.interim {
				t.Fatalf("%d %s, interim %q; want %d, interim %v", code, body, interim, c.want, c.interim)
			}
		})
	}
	// No body, nothing to continue.
	if _, _, interim := exchange(t, &apitest.Supervisor{}, "POST /v1/reload HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n"); interim != "" {
		t.Fatalf("a 100 Continue for a request without a body")
	}
	// Chunked bodies are told to go on too.
	code, _, interim := exchange(t, &apitest.Supervisor{}, "POST /v1/services/web/signal HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n"+signalBody+"\r\n0\r\n\r\n")
	if code != 200 || interim != httpwire.ContinueLine {
		t.Fatalf("chunked with Expect: %d, interim %q", code, interim)
	}
}

// FuzzHandler feeds raw bytes to the request parser and the handler:
// every answer must be JSON and below 500 (but 501 and 505), a 100
// Continue only for a head that asked for it and before its body is read,
// a 2xx only for a request of HTTP/1.1 with a Host, and nothing may panic.
func FuzzHandler(f *testing.F) {
	for _, seed := range []string{
		"GET /v1/services HTTP/1.1\r\nHost: tend\r\n\r\n",
		"POST /v1/services/web/signal HTTP/1.1\r\nHost: tend\r\nContent-Length: 17\r\n\r\n{\"signal\":\"USR1\"}",
		"POST /v1/reload HTTP/1.1\r\nHost: tend\r\n\r\n",
		"GET /v1/health HTTP/1.1\r\nHost: tend\r\n\r\n",
		"POST /v1/services/web/restart HTTP/1.1\r\nHost: tend\r\n\r\n",
		"GET /v1/services/%00 HTTP/1.1\r\nHost: tend\r\n\r\n",
		"PUT //v1//services/// HTTP/1.1\r\nHost: tend\r\n\r\n",
		"GET /livez HTTP/1.1\r\nHost: tend\r\n\r\n",
		"HEAD /readyz?format=json HTTP/1.1\r\nHost: tend\r\n\r\n",
		"GET /readyz?format=text HTTP/1.1\r\nHost: tend\r\n\r\n",
		"HEAD /metrics HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		code, body, interim := exchange(t, &apitest.Supervisor{ReloadOK: true, Healthy: true, ReadyOK: true}, string(raw))
		if code == 0 {
			return // the request ended before its first byte: no answer is owed
		}
		if code >= 500 && code != 501 && code != 505 {
			t.Fatalf("%d for %q: %s", code, raw, body)
		}
		head, _, _ := strings.Cut(string(raw), "\r\n\r\n")
		if interim != "" && !strings.Contains(strings.ToLower(head), "100-continue") {
			t.Fatalf("100 Continue for %q", raw)
		}
		if code/100 == 2 && bytes.Contains(raw[:bytes.IndexByte(raw, '\n')+1], []byte(" HTTP/1.1")) &&
			!bytes.Contains(bytes.ToLower(raw), []byte("\nhost:")) {
			t.Fatalf("%d for an HTTP/1.1 request without a Host: %q", code, raw)
		}
	})
}

// A valid reload answers with what it did, never with every service: the
// answer is as small as the change.
func TestReloadAnswer(t *testing.T) {
	code, body := roundTrip(t, &apitest.Supervisor{ReloadOK: true}, "POST /v1/reload HTTP/1.1\r\nHost: tend\r\n\r\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil || code != 200 {
		t.Fatalf("%d %s (%v)", code, body, err)
	}
	want := map[string]any{"added": []any{}, "removed": []any{}, "re_added": []any{}, "restarted": []any{"web"},
		"updated": []any{}, "unchanged": 1.0, "files": 1.0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}
