package httpwire

import (
	"bufio"
	"errors"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// The server's side, reading: a request as the control socket and the
// metrics listener take it.

// Request is a parsed request.
type Request struct {
	Method string
	Path   string // as sent (percent-encoded), without the query
	Query  string // what followed "?", as sent
	Body   []byte
}

// Limits that keep a client from holding tend's attention: the bytes of a
// request's head (and of a chunked body's framing), and of its body.
const (
	MaxBody   = 64 << 10
	MaxHeader = 16 << 10
)

const (
	maxHeaderLines = 64
	// maxEmptyLines before the request line are skipped (RFC 9112 section
	// 2.2: some clients send a CRLF after a POST body).
	maxEmptyLines = 4
)

// ContinueLine is the interim answer to `Expect: 100-continue`.
const ContinueLine = "HTTP/1.1 100 Continue\r\n\r\n"

// ReadRequest parses one request from r, which the caller limits in time.
// Once a head is accepted and a body follows, beforeBody (if not nil) is
// called: to extend the deadline, and to send "100 Continue" if the client
// waits for it (`Expect: 100-continue`). A request refused by its head
// gets its final answer instead, and its body is never read.
func ReadRequest(r *bufio.Reader, beforeBody func(sendContinue bool) error) (*Request, error) {
	budget := MaxHeader
	line, err := readLine(r, &budget, 431)
	for n := 0; err == nil && line == "" && n < maxEmptyLines; n++ {
		line, err = readLine(r, &budget, 431)
	}
	if err != nil {
		return nil, err
	}
	method, target, minor, err := ParseRequestLine(line)
	if err != nil {
		return nil, err
	}
	path, query, err := requestPath(target)
	if err != nil {
		return nil, err
	}
	req := &Request{Method: method, Path: path, Query: query}

	var (
		length     int64 = -1
		hosts      int
		codings    []string
		framed     bool // Transfer-Encoding was sent
		expectCont bool
	)
	for n := 0; ; n++ {
		if n > maxHeaderLines {
			return nil, fail(431, "too many header lines")
		}
		line, err := midRequest(r, &budget, 431)
		if err != nil {
			return nil, err
		}
		if line == "" {
			break
		}
		name, value, err := ParseHeaderLine(line)
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(name) {
		case "host":
			hosts++
			if !ValidHost(value) {
				return nil, fail(400, "malformed Host header")
			}
		case "content-length":
			n, err := ParseContentLength(value)
			if err != nil {
				return nil, err
			}
			if length >= 0 && n != length {
				return nil, fail(400, "Content-Length headers that disagree")
			}
			length = n
		case "transfer-encoding":
			framed = true
			for c := range strings.SplitSeq(value, ",") {
				if c = strings.ToLower(strings.Trim(c, " \t")); c != "" {
					codings = append(codings, c)
				}
			}
		case "expect":
			if !strings.EqualFold(value, "100-continue") {
				return nil, fail(417, "the only expectation met here is 100-continue")
			}
			expectCont = true
		}
	}
	// RFC 9112 section 3.2: an HTTP/1.1 request without a Host, or with
	// more than one, is a 400, also in absolute-form.
	if hosts > 1 || (hosts == 0 && minor >= 1) {
		return nil, fail(400, "an HTTP/1.1 request needs exactly one Host header")
	}
	chunked := false
	if framed {
		// Sections 6.1 and 6.3: both framings at once is how requests are
		// smuggled; chunked must come last; 1.0 has no transfer codings.
		switch {
		case len(codings) == 0:
			return nil, fail(400, "an empty Transfer-Encoding")
		case length >= 0:
			return nil, fail(400, "both Content-Length and Transfer-Encoding")
		case minor == 0:
			return nil, fail(400, "Transfer-Encoding in an HTTP/1.0 request")
		case codings[len(codings)-1] != "chunked":
			return nil, fail(400, "the last transfer coding must be chunked")
		case len(codings) > 1:
			return nil, fail(501, "only the chunked transfer coding is understood")
		}
		chunked = true
	}
	if length > MaxBody {
		return nil, fail(413, "the body is over %d bytes", MaxBody)
	}
	if !chunked && length <= 0 {
		return req, nil
	}
	if beforeBody != nil {
		if err := beforeBody(expectCont && minor >= 1); err != nil {
			return nil, err
		}
	}
	if chunked {
		req.Body, err = readChunked(r)
		return req, err
	}
	req.Body = make([]byte, length)
	if _, err := io.ReadFull(r, req.Body); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fail(408, "the body was not sent in time")
		}
		return nil, fail(400, "the body is shorter than its Content-Length")
	}
	return req, nil
}

// requestPath turns a request target into the path to route: origin-form
// as it is, absolute-form (http://host/path, RFC 9112 section 3.2.2) by its
// path. The query is returned apart; a fragment never belongs in a request.
func requestPath(target string) (path, query string, err error) {
	path = target
	if !strings.HasPrefix(target, "/") {
		scheme, rest, ok := strings.Cut(target, "://")
		if !ok || !(strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
			return "", "", fail(400, "the request target must be a path or an http URI")
		}
		authority := rest
		path = "/"
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			authority, path = rest[:i], rest[i:]
			if path[0] == '?' {
				path = "/" + path
			}
		}
		if authority == "" || !ValidHost(authority) {
			return "", "", fail(400, "malformed authority in the request target")
		}
	}
	path, query, _ = strings.Cut(path, "?")
	for i := 0; i < len(path); i++ {
		c := path[i]
		if !isPathChar(c) {
			return "", "", fail(400, "character %q is not allowed in a path", c)
		}
	}
	if _, err := url.PathUnescape(path); err != nil {
		return "", "", fail(400, "malformed request target: %v", err)
	}
	return path, query, nil
}

// isPathChar: pchar and "/" of RFC 3986 (unreserved, sub-delims, ":", "@",
// and "%" for the escapes that url.PathUnescape checks).
func isPathChar(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
		strings.IndexByte("-._~!$&'()*+,;=:@/%", c) >= 0
}

// readChunked reads a chunked body (RFC 9112 section 7.1) up to MaxBody
// bytes of content. Its framing (size lines, extensions, trailers) has a
// budget of its own, so that a body of one-byte chunks or endless trailers
// cannot make tend read without end.
func readChunked(r *bufio.Reader) ([]byte, error) {
	framing := MaxHeader
	var body []byte
	for {
		line, err := midRequest(r, &framing, 413)
		if err != nil {
			return nil, err
		}
		i := 0
		for i < len(line) && i < 9 && isHex(line[i]) {
			i++
		}
		if i == 0 || i > 8 {
			return nil, fail(400, "malformed chunk size")
		}
		if ext := strings.TrimLeft(line[i:], " \t"); ext != "" && ext[0] != ';' {
			return nil, fail(400, "malformed chunk size")
		}
		size, _ := strconv.ParseInt(line[:i], 16, 64)
		if size == 0 {
			break
		}
		if int64(len(body))+size > MaxBody {
			return nil, fail(413, "the body is over %d bytes", MaxBody)
		}
		start := len(body)
		body = append(body, make([]byte, size)...)
		if _, err := io.ReadFull(r, body[start:]); err != nil {
			return nil, endedEarly(err, "the body ended inside a chunk")
		}
		if end, err := midRequest(r, &framing, 413); err != nil || end != "" {
			if err != nil {
				return nil, err
			}
			return nil, fail(400, "a chunk is longer than its size")
		}
	}
	// The trailer section: read and checked, then ignored.
	for n := 0; ; n++ {
		if n > maxHeaderLines {
			return nil, fail(431, "too many trailer lines")
		}
		line, err := midRequest(r, &framing, 413)
		if err != nil {
			return nil, err
		}
		if line == "" {
			return body, nil
		}
		if _, _, err := ParseHeaderLine(line); err != nil {
			return nil, err
		}
	}
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// readLine reads one CRLF (or LF) line, charging it to budget; a line over
// the budget is answered overCode. A line that ends or times out before its
// first byte returns the error as it is: before a request's first byte
// nobody is owed an answer (see midRequest for the other lines). The
// client's side reads an answer's lines with it too.
func readLine(r *bufio.Reader, budget *int, overCode int) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		*budget -= len(chunk)
		if *budget < 0 {
			if overCode == 431 {
				return "", fail(431, "the request head is over %d bytes", MaxHeader)
			}
			return "", fail(overCode, "the chunked framing is over %d bytes", MaxHeader)
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) == 0 {
			return "", err
		}
		return "", endedEarly(err, "the request ended early")
	}
	s := TrimEOL(string(line))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", fail(400, "control characters in the request")
		}
	}
	return s, nil
}

// midRequest is readLine for every line after the first: a request that
// stops there is answered.
func midRequest(r *bufio.Reader, budget *int, overCode int) (string, error) {
	line, err := readLine(r, budget, overCode)
	var he *Error
	if err != nil && !errors.As(err, &he) {
		return "", endedEarly(err, "the request ended early")
	}
	return line, err
}

// endedEarly is the answer to a request cut short: 408 when its deadline
// passed, 400 when the client closed its side.
func endedEarly(err error, msg string) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fail(408, "the request was not sent in time")
	}
	return fail(400, "%s", msg)
}
