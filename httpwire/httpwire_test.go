package httpwire

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestParseStatusLine(t *testing.T) {
	cases := []struct {
		line string
		code int // 0: an error
	}{
		{"HTTP/1.1 200 OK", 200},
		{"HTTP/1.1 200 OK\r\n", 200},
		{"HTTP/1.0 204 No Content\n", 204},
		{"HTTP/1.1 503 ", 503},
		{"HTTP/1.1 404", 404}, // no reason, no SP: tolerated
		{"HTTP/1.1 302 Found elsewhere\t(really)", 302},
		{"HTTP/1.1 200 Ok\x80\xff", 200}, // obs-text in the reason
		{"HTTP/1.1 599 x", 599},
		{"HTTP/1.1 100 Continue", 100},
		{"HTTP/1.1 2ab OK", 0},
		{"HTTP/1.1 20 OK", 0},
		{"HTTP/1.1 2000 OK", 0},
		{"HTTP/1.1 099 x", 0},
		{"HTTP/1.1 600 x", 0},
		{"HTTP/1.1  200 OK", 0},
		{"HTTP/1.1 200\tOK", 0},
		{"HTTP/1.1 -20 OK", 0},
		{"HTTP/1.1 +20 OK", 0},
		{"HTTP/2.0 200 OK", 0},
		{"HTTP/1.10 200 OK", 0},
		{"HTTP/1. 200 OK", 0},
		{"http/1.1 200 OK", 0},
		{"HTTP/1.1 200 O\x00K", 0},
		{"HTTP/1.1 200 OK\r\r\n", 0},
		{"HTTP/1.1 200 OK\x7f", 0},
		{"ICY 200 OK", 0},
		{"", 0},
		{"HTTP/1.1", 0},
		{"SSH-2.0-OpenSSH_9.2", 0},
	}
	for _, c := range cases {
		code, err := ParseStatusLine(c.line)
		if code != c.code || (err == nil) != (c.code != 0) {
			t.Errorf("ParseStatusLine(%q) = %d, %v; want %d", c.line, code, err, c.code)
		}
	}
}

func TestParseRequestLine(t *testing.T) {
	cases := []struct {
		line           string
		method, target string
		minor          int
		code           int // the status of the error, 0 for none
	}{
		{"GET /v1/services HTTP/1.1", "GET", "/v1/services", 1, 0},
		{"POST http://localhost/v1/reload HTTP/1.0", "POST", "http://localhost/v1/reload", 0, 0},
		{"get / HTTP/1.1", "get", "/", 1, 0}, // a token; the caller decides what it means
		{"M-SEARCH * HTTP/1.1", "M-SEARCH", "*", 1, 0},
		{"GET / HTTP/2.0", "", "", 0, 505},
		{"GET / HTTP/3.0", "", "", 0, 505},
		{"GET / HTTP/1.10", "", "", 0, 400},
		{"GET / HTTP/11", "", "", 0, 400},
		{"GET / http/1.1", "", "", 0, 400},
		{"GET /  HTTP/1.1", "", "", 0, 400},
		{"GET  / HTTP/1.1", "", "", 0, 400},
		{" GET / HTTP/1.1", "", "", 0, 400},
		{"GET / HTTP/1.1 ", "", "", 0, 400},
		{"GET /", "", "", 0, 400},
		{"GET", "", "", 0, 400},
		{"", "", "", 0, 400},
		{"G(T / HTTP/1.1", "", "", 0, 400},
		{"GET /a\x7fb HTTP/1.1", "", "", 0, 400},
		{"GET /\xc3\xa9 HTTP/1.1", "", "", 0, 400},
		{"GET /a\tb HTTP/1.1", "", "", 0, 400},
	}
	for _, c := range cases {
		m, tg, minor, err := ParseRequestLine(c.line)
		if c.code != 0 {
			var we *Error
			if !errors.As(err, &we) || we.Code != c.code {
				t.Errorf("ParseRequestLine(%q): %v, want a %d", c.line, err, c.code)
			}
			continue
		}
		if err != nil || m != c.method || tg != c.target || minor != c.minor {
			t.Errorf("ParseRequestLine(%q) = %q %q %d %v", c.line, m, tg, minor, err)
		}
	}
}

func TestParseHeaderLine(t *testing.T) {
	cases := []struct {
		line, name, value string
		ok                bool
	}{
		{"Host: tend", "Host", "tend", true},
		{"Host:tend", "Host", "tend", true},
		{"X-Empty:", "X-Empty", "", true},
		{"X: \t a b \t", "X", "a b", true},
		{"X: caf\xc3\xa9", "X", "caf\xc3\xa9", true},
		{"X: a:b", "X", "a:b", true},
		{"Host : tend", "", "", false},
		{" Host: tend", "", "", false},
		{"\tcontinued", "", "", false},
		{": tend", "", "", false},
		{"Host tend", "", "", false},
		{"Ho(st: tend", "", "", false},
		{"X: a\x00b", "", "", false},
		{"X: a\rb", "", "", false},
		{"X: a\x7f", "", "", false},
	}
	for _, c := range cases {
		name, value, err := ParseHeaderLine(c.line)
		if (err == nil) != c.ok || name != c.name || value != c.value {
			t.Errorf("ParseHeaderLine(%q) = %q %q %v", c.line, name, value, err)
		}
	}
}

func TestParseContentLength(t *testing.T) {
	cases := []struct {
		value string
		n     int64
		code  int
	}{
		{"0", 0, 0},
		{"17", 17, 0},
		{"00017", 17, 0},
		{"999999999999999999", 999999999999999999, 0},
		{"0000000000000000000000000001", 1, 0},
		{"9999999999999999999", 0, 413},
		{"99999999999999999999999999999", 0, 413},
		{"+2", 0, 400},
		{"-1", 0, 400},
		{" 2", 0, 400},
		{"2 ", 0, 400},
		{"2, 2", 0, 400},
		{"0x10", 0, 400},
		{"1e3", 0, 400},
		{"", 0, 400},
		{"٣", 0, 400}, // a digit, but not an ASCII one
	}
	for _, c := range cases {
		n, err := ParseContentLength(c.value)
		var we *Error
		switch {
		case c.code == 0 && (err != nil || n != c.n):
			t.Errorf("ParseContentLength(%q) = %d, %v; want %d", c.value, n, err, c.n)
		case c.code != 0 && (!errors.As(err, &we) || we.Code != c.code):
			t.Errorf("ParseContentLength(%q) = %d, %v; want a %d", c.value, n, err, c.code)
		}
	}
}

func TestValidHost(t *testing.T) {
	for host, want := range map[string]bool{
		"":                true,
		"localhost":       true,
		"tend:80":         true,
		"[::1]:8080":      true,
		"a%20b":           true,
		"host name":       false,
		"a/b":             false,
		"a@b":             false,
		"caf\xc3\xa9.com": false,
	} {
		if got := ValidHost(host); got != want {
			t.Errorf("ValidHost(%q) = %v", host, got)
		}
	}
}

// Reference grammars, written as regular expressions straight from RFC
// 9112, for the fuzz target to hold the hand-written parsers to.
var (
	statusRE  = regexp.MustCompile(`^HTTP/1\.[0-9] ([1-5][0-9][0-9])(?: [\t\x20-\x7e\x{80}-\x{ff}]*)?(?:\r?\n)?$`)
	requestRE = regexp.MustCompile("^([-!#$%&'*+.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/([0-9])\\.([0-9])$")
	headerRE  = regexp.MustCompile("^([-!#$%&'*+.^_`|~0-9A-Za-z]+):[ \t]*((?:[\t\x20-\x7e\\x{80}-\\x{ff}]*[\x21-\x7e\\x{80}-\\x{ff}])?)[ \t]*$")
	lengthRE  = regexp.MustCompile(`^[0-9]+$`)
)

// latin1 spells each byte of s as the rune of the same number, so that the
// reference expressions can speak of obs-text (bytes 0x80-0xff): Go's
// regexp reads UTF-8.
func latin1(s string) string {
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

// FuzzWire holds every parser of the package to its reference grammar:
// the same inputs accepted, the same values returned, no panic.
func FuzzWire(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\n", "HTTP/1.1 2ab OK", "HTTP/1.0 404", "HTTP/1.1 200 \x80",
		"GET /v1/services HTTP/1.1", "POST http://tend/v1/reload HTTP/1.0", "GET / HTTP/2.0",
		"Host: tend", "X: \t a b \t", "Host : x", " folded", "Content-Length", "00017", "+2",
		"9999999999999999999",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := ParseStatusLine(s)
		if m := statusRE.FindStringSubmatch(latin1(s)); m == nil {
			if err == nil {
				t.Fatalf("ParseStatusLine(%q) accepted %d", s, code)
			}
		} else if err != nil || strconv.Itoa(code) != m[1] {
			t.Fatalf("ParseStatusLine(%q) = %d, %v; want %s", s, code, err, m[1])
		}

		method, target, minor, err := ParseRequestLine(s)
		if m := requestRE.FindStringSubmatch(s); m == nil || m[3] != "1" {
			if err == nil {
				t.Fatalf("ParseRequestLine(%q) accepted", s)
			}
			if m != nil && err.(*Error).Code != 505 {
				t.Fatalf("ParseRequestLine(%q): %v, want a 505", s, err)
			}
		} else if err != nil || method != m[1] || target != m[2] || strconv.Itoa(minor) != m[4] {
			t.Fatalf("ParseRequestLine(%q) = %q %q %d %v", s, method, target, minor, err)
		}

		name, value, err := ParseHeaderLine(s)
		if m := headerRE.FindStringSubmatch(latin1(s)); m == nil {
			if err == nil {
				t.Fatalf("ParseHeaderLine(%q) accepted", s)
			}
		} else if err != nil || name != m[1] || latin1(value) != m[2] {
			t.Fatalf("ParseHeaderLine(%q) = %q %q %v; want %q %q", s, name, value, err, m[1], m[2])
		}

		n, err := ParseContentLength(s)
		if !lengthRE.MatchString(s) {
			if err == nil {
				t.Fatalf("ParseContentLength(%q) accepted", s)
			}
		} else if d := strings.TrimLeft(s, "0"); len(d) <= 18 {
			want, _ := strconv.ParseInt("0"+d, 10, 64)
			if err != nil || n != want {
				t.Fatalf("ParseContentLength(%q) = %d, %v", s, n, err)
			}
		} else if err == nil || err.(*Error).Code != 413 {
			t.Fatalf("ParseContentLength(%q) = %d, %v; want a 413", s, n, err)
		}
	})
}

// A HEAD answer is the GET answer's head, Content-Length and all, without
// the body (RFC 9110 section 9.3.2).
func TestWriteResponseHead(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp Response
		want string
	}{
		{"text", Response{Code: 200, ContentType: "text/plain; charset=utf-8", Text: []byte("ok\n")},
			"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"},
		{"json", Response{Code: 503, Body: map[string]bool{"ready": false}},
			"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 21\r\nConnection: close\r\n\r\n"},
		{"405", Response{Code: 405, Body: map[string]string{"error": "x"}, Allow: "GET, HEAD"},
			"HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\nContent-Length: 19\r\nConnection: close\r\nAllow: GET, HEAD\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var get, head strings.Builder
			if err := WriteResponse(&get, tc.resp); err != nil {
				t.Fatal(err)
			}
			tc.resp.Head = true
			if err := WriteResponse(&head, tc.resp); err != nil {
				t.Fatal(err)
			}
			if head.String() != tc.want {
				t.Fatalf("HEAD answer\n%q\nwant\n%q", head.String(), tc.want)
			}
			if !strings.HasPrefix(get.String(), tc.want) || len(get.String()) == len(tc.want) {
				t.Fatalf("the GET answer %q does not begin with the HEAD answer's head and go on with a body", get.String())
			}
		})
	}
}
