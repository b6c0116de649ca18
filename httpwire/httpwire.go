// Package httpwire is tend's hand-written HTTP/1.1 (RFC 9112), both sides
// of the wire: the strict pieces of the grammar (this file), shared by the
// control socket's server and the health checks' client so that there is
// one parser for each piece, not one per caller; the server's side,
// reading a request (request.go) and writing its answer (response.go); and
// the client's side, tend ctl reading the answer (client.go).
//
// The control socket speaks a strict subset of HTTP/1.1: one request per
// connection, a body with Content-Length or chunked, the answer always JSON
// and followed by the end of the connection. That is all curl --unix-socket
// and tend ctl need, and it keeps net/http (with crypto/tls and HTTP/2,
// which more than double the binary and slow every start of tend) out of
// PID 1. docs/control-http.md lists the rules and why.
//
// The grammar's functions take one line without its line ending unless
// they say otherwise, and accept only what the grammar allows: a peer that
// sends anything else gets an *Error naming the status a server should
// answer.
package httpwire

import (
	"fmt"
	"strings"
)

// Error is input that breaks the grammar. Code is the status a server
// answers it with (400 unless a more precise one applies).
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

func fail(code int, format string, a ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, a...)}
}

// TrimEOL removes one line ending, CRLF or a bare LF (RFC 9112 section 2.2
// lets a recipient accept a bare LF). A stray CR is left in place for the
// caller's check of control characters to refuse.
func TrimEOL(line string) string {
	if l, ok := strings.CutSuffix(line, "\n"); ok {
		return strings.TrimSuffix(l, "\r")
	}
	return line
}

// ParseStatusLine parses a response's status line, with or without its line
// ending: exactly "HTTP/1.x SP 3DIGIT SP reason", x a digit, the code
// 100-599, the reason free of control characters. One leniency, as curl and
// Go's own client allow: an empty reason may also lose its SP
// ("HTTP/1.1 204"), because a health check that failed a healthy server
// for that would do more harm than the strictness is worth.
func ParseStatusLine(line string) (code int, err error) {
	line = TrimEOL(line)
	if len(line) < 12 || line[:7] != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' {
		return 0, fail(400, "not an HTTP/1.x status line: %.40q", line)
	}
	digits := line[9:12]
	for i := range 3 {
		if !isDigit(digits[i]) {
			return 0, fail(400, "status %.3q is not three digits", digits)
		}
	}
	code = int(digits[0]-'0')*100 + int(digits[1]-'0')*10 + int(digits[2]-'0')
	if code < 100 || code > 599 {
		return 0, fail(400, "status %d is outside 100-599", code)
	}
	if rest := line[12:]; rest != "" {
		if rest[0] != ' ' {
			return 0, fail(400, "status %.4q is not three digits", line[9:])
		}
		if !validText(rest[1:]) {
			return 0, fail(400, "control characters in the reason phrase")
		}
	}
	return code, nil
}

// ParseRequestLine parses "method SP request-target SP HTTP/1.x" and
// returns x as minor. The method must be a token, the target visible
// ASCII; what the target may look like is the caller's business. A
// version other than 1.x is a 505, anything else malformed a 400.
func ParseRequestLine(line string) (method, target string, minor int, err error) {
	method, rest, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || strings.Contains(version, " ") {
		return "", "", 0, fail(400, "malformed request line")
	}
	if !ValidToken(method) {
		return "", "", 0, fail(400, "malformed method")
	}
	if target == "" {
		return "", "", 0, fail(400, "empty request target")
	}
	for i := 0; i < len(target); i++ {
		if target[i] <= ' ' || target[i] >= 0x7f {
			return "", "", 0, fail(400, "malformed request target")
		}
	}
	if len(version) != 8 || version[:5] != "HTTP/" || !isDigit(version[5]) || version[6] != '.' || !isDigit(version[7]) {
		return "", "", 0, fail(400, "malformed HTTP version")
	}
	if version[5] != '1' {
		return "", "", 0, fail(505, "only HTTP/1.x is spoken here")
	}
	return method, target, int(version[7] - '0'), nil
}

// ParseHeaderLine parses "name: value". The name is a token with nothing
// between it and the colon (RFC 9112 section 5.1 makes that a 400); the
// value loses its surrounding spaces and tabs and may hold no control
// characters. A line that starts with a space or tab is the obsolete line
// folding, refused as section 5.2 allows.
func ParseHeaderLine(line string) (name, value string, err error) {
	if line != "" && (line[0] == ' ' || line[0] == '\t') {
		return "", "", fail(400, "obsolete line folding in the header")
	}
	name, value, ok := strings.Cut(line, ":")
	if !ok || !ValidToken(name) {
		return "", "", fail(400, "malformed header line")
	}
	value = strings.Trim(value, " \t")
	if !validText(value) {
		return "", "", fail(400, "control characters in header %s", name)
	}
	return name, value, nil
}

// maxLengthDigits keeps ParseContentLength's arithmetic below overflow.
const maxLengthDigits = 18

// ParseContentLength parses a Content-Length value: digits only, so no
// sign, space, comma list or hex (RFC 9110 section 8.6). A value too large
// for an int64 is a 413, not a 400: it is well-formed, just too big.
func ParseContentLength(value string) (int64, error) {
	if value == "" {
		return 0, fail(400, "empty Content-Length")
	}
	for i := 0; i < len(value); i++ {
		if !isDigit(value[i]) {
			return 0, fail(400, "Content-Length %.20q is not digits only", value)
		}
	}
	digits := strings.TrimLeft(value, "0")
	if len(digits) > maxLengthDigits {
		return 0, fail(413, "Content-Length %.20s… is too large", value)
	}
	var n int64
	for i := 0; i < len(digits); i++ {
		n = n*10 + int64(digits[i]-'0')
	}
	return n, nil
}

// ValidToken reports whether s is an RFC 9110 token (methods, header names,
// transfer codings).
func ValidToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

// ValidHost reports whether a Host value is a possible uri-host with an
// optional port: registered-name, IPv4 or [IPv6] characters, percent
// escapes, ":". An empty value is allowed (RFC 9110 section 7.2).
func ValidHost(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) || strings.IndexByte("-._~!$&'()*+,;=:%[]", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validText: field values and reason phrases may hold spaces, tabs,
// visible ASCII and obs-text, never another control character.
func validText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isTokenChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
