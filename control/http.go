package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/tend-init/tend/httpwire"
)

// The control socket speaks a strict subset of HTTP/1.1: one request per
// connection, a body with Content-Length or chunked, the answer always JSON
// and followed by the end of the connection. That is all curl --unix-socket
// and tend ctl need, and it keeps net/http (with crypto/tls and HTTP/2,
// which more than double the binary and slow every start of tend) out of
// PID 1. docs/control-http.md lists the rules and why.

// Request is a parsed request.
type Request struct {
	Method string
	Path   string // as sent (percent-encoded), without the query
	Query  string // what followed "?", as sent
	Body   []byte
}

// Response is an answer: a status code and a value to encode as JSON, or
// Text as it is, or a Stream of lines.
type Response struct {
	Code        int
	Body        any
	Allow       string // for 405
	ContentType string // for Text and Stream; JSON otherwise
	Text        []byte
	// Stream, when set, is answered with a chunked body: it calls send for
	// each piece until there is no more, send fails (the client is gone or
	// too slow), or stop is closed (tend is exiting).
	Stream func(send func([]byte) error, stop <-chan struct{})
}

// httpError is a request the parser refuses: Code is the status to answer.
type httpError = httpwire.Error

func bad(code int, format string, a ...any) error {
	return &httpError{Code: code, Msg: fmt.Sprintf(format, a...)}
}

const (
	maxHeaderLines = 64
	// maxEmptyLines before the request line are skipped (RFC 9112 section
	// 2.2: some clients send a CRLF after a POST body).
	maxEmptyLines = 4
)

// continueLine is the interim answer to `Expect: 100-continue`.
const continueLine = "HTTP/1.1 100 Continue\r\n\r\n"

// readRequest parses one request from r, which the caller limits in time.
// Once a head is accepted and a body follows, beforeBody (if not nil) is
// called: to extend the deadline, and to send "100 Continue" if the client
// waits for it (`Expect: 100-continue`). A request refused by its head
// gets its final answer instead, and its body is never read.
func readRequest(r *bufio.Reader, beforeBody func(sendContinue bool) error) (*Request, error) {
	budget := maxHeader
	line, err := readLine(r, &budget, 431)
	for n := 0; err == nil && line == "" && n < maxEmptyLines; n++ {
		line, err = readLine(r, &budget, 431)
	}
	if err != nil {
		return nil, err
	}
	method, target, minor, err := httpwire.ParseRequestLine(line)
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
			return nil, bad(431, "too many header lines")
		}
		line, err := midRequest(r, &budget, 431)
		if err != nil {
			return nil, err
		}
		if line == "" {
			break
		}
		name, value, err := httpwire.ParseHeaderLine(line)
		if err != nil {
			return nil, err
		}
		switch strings.ToLower(name) {
		case "host":
			hosts++
			if !httpwire.ValidHost(value) {
				return nil, bad(400, "malformed Host header")
			}
		case "content-length":
			n, err := httpwire.ParseContentLength(value)
			if err != nil {
				return nil, err
			}
			if length >= 0 && n != length {
				return nil, bad(400, "Content-Length headers that disagree")
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
				return nil, bad(417, "the only expectation met here is 100-continue")
			}
			expectCont = true
		}
	}
	// RFC 9112 section 3.2: an HTTP/1.1 request without a Host, or with
	// more than one, is a 400, also in absolute-form.
	if hosts > 1 || (hosts == 0 && minor >= 1) {
		return nil, bad(400, "an HTTP/1.1 request needs exactly one Host header")
	}
	chunked := false
	if framed {
		// Sections 6.1 and 6.3: both framings at once is how requests are
		// smuggled; chunked must come last; 1.0 has no transfer codings.
		switch {
		case len(codings) == 0:
			return nil, bad(400, "an empty Transfer-Encoding")
		case length >= 0:
			return nil, bad(400, "both Content-Length and Transfer-Encoding")
		case minor == 0:
			return nil, bad(400, "Transfer-Encoding in an HTTP/1.0 request")
		case codings[len(codings)-1] != "chunked":
			return nil, bad(400, "the last transfer coding must be chunked")
		case len(codings) > 1:
			return nil, bad(501, "only the chunked transfer coding is understood")
		}
		chunked = true
	}
	if length > maxBody {
		return nil, bad(413, "the body is over %d bytes", maxBody)
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
			return nil, bad(408, "the body was not sent in time")
		}
		return nil, bad(400, "the body is shorter than its Content-Length")
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
			return "", "", bad(400, "the request target must be a path or an http URI")
		}
		authority := rest
		path = "/"
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			authority, path = rest[:i], rest[i:]
			if path[0] == '?' {
				path = "/" + path
			}
		}
		if authority == "" || !httpwire.ValidHost(authority) {
			return "", "", bad(400, "malformed authority in the request target")
		}
	}
	path, query, _ = strings.Cut(path, "?")
	for i := 0; i < len(path); i++ {
		c := path[i]
		if !isPathChar(c) {
			return "", "", bad(400, "character %q is not allowed in a path", c)
		}
	}
	if _, err := url.PathUnescape(path); err != nil {
		return "", "", bad(400, "malformed request target: %v", err)
	}
	return path, query, nil
}

// isPathChar: pchar and "/" of RFC 3986 (unreserved, sub-delims, ":", "@",
// and "%" for the escapes that url.PathUnescape checks).
func isPathChar(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
		strings.IndexByte("-._~!$&'()*+,;=:@/%", c) >= 0
}

// readChunked reads a chunked body (RFC 9112 section 7.1) up to maxBody
// bytes of content. Its framing (size lines, extensions, trailers) has a
// budget of its own, so that a body of one-byte chunks or endless trailers
// cannot make tend read without end.
func readChunked(r *bufio.Reader) ([]byte, error) {
	framing := maxHeader
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
			return nil, bad(400, "malformed chunk size")
		}
		if ext := strings.TrimLeft(line[i:], " \t"); ext != "" && ext[0] != ';' {
			return nil, bad(400, "malformed chunk size")
		}
		size, _ := strconv.ParseInt(line[:i], 16, 64)
		if size == 0 {
			break
		}
		if int64(len(body))+size > maxBody {
			return nil, bad(413, "the body is over %d bytes", maxBody)
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
			return nil, bad(400, "a chunk is longer than its size")
		}
	}
	// The trailer section: read and checked, then ignored.
	for n := 0; ; n++ {
		if n > maxHeaderLines {
			return nil, bad(431, "too many trailer lines")
		}
		line, err := midRequest(r, &framing, 413)
		if err != nil {
			return nil, err
		}
		if line == "" {
			return body, nil
		}
		if _, _, err := httpwire.ParseHeaderLine(line); err != nil {
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
// nobody is owed an answer (see midRequest for the other lines).
func readLine(r *bufio.Reader, budget *int, overCode int) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		*budget -= len(chunk)
		if *budget < 0 {
			if overCode == 431 {
				return "", bad(431, "the request head is over %d bytes", maxHeader)
			}
			return "", bad(overCode, "the chunked framing is over %d bytes", maxHeader)
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
	s := httpwire.TrimEOL(string(line))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return "", bad(400, "control characters in the request")
		}
	}
	return s, nil
}

// midRequest is readLine for every line after the first: a request that
// stops there is answered.
func midRequest(r *bufio.Reader, budget *int, overCode int) (string, error) {
	line, err := readLine(r, budget, overCode)
	var he *httpError
	if err != nil && !errors.As(err, &he) {
		return "", endedEarly(err, "the request ended early")
	}
	return line, err
}

// endedEarly is the answer to a request cut short: 408 when its deadline
// passed, 400 when the client closed its side.
func endedEarly(err error, msg string) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return bad(408, "the request was not sent in time")
	}
	return bad(400, "%s", msg)
}

// writeResponse writes an answer and nothing after it.
func writeResponse(w io.Writer, resp Response) error {
	var head bytes.Buffer
	if resp.Stream != nil {
		fmt.Fprintf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", resp.Code, statusText(resp.Code), resp.ContentType)
		_, err := w.Write(head.Bytes())
		return err
	}
	body, contentType := resp.Text, resp.ContentType
	if body == nil {
		var err error
		if body, err = json.MarshalIndent(resp.Body, "", "  "); err != nil {
			body, _ = json.Marshal(map[string]string{"error": "cannot encode the answer"})
			resp.Code = 500
		}
		body, contentType = append(body, '\n'), "application/json"
	}
	fmt.Fprintf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n", resp.Code, statusText(resp.Code), contentType, len(body))
	if resp.Allow != "" {
		fmt.Fprintf(&head, "Allow: %s\r\n", resp.Allow)
	}
	head.WriteString("\r\n")
	_, err := w.Write(append(head.Bytes(), body...))
	return err
}

// writeChunk sends one piece of a chunked body; an empty one ends it.
func writeChunk(w io.Writer, p []byte) error {
	buf := fmt.Appendf(nil, "%x\r\n", len(p))
	buf = append(append(buf, p...), "\r\n"...)
	_, err := w.Write(buf)
	return err
}

func statusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 409:
		return "Conflict"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 417:
		return "Expectation Failed"
	case 422:
		return "Unprocessable Content"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status"
}

// maxAnswer bounds what tend ctl reads of an answer.
const maxAnswer = 16 << 20

// readResponse parses an answer for tend ctl: interim 1xx answers are
// skipped, the body is read to its Content-Length (or to the end, bounded).
func readResponse(r *bufio.Reader) (int, []byte, error) {
	code, length, chunked, err := readResponseHead(r)
	if err != nil {
		return 0, nil, err
	}
	if chunked {
		body, err := io.ReadAll(io.LimitReader(chunkReader(r), maxAnswer))
		return code, body, err
	}
	if length < 0 {
		body, err := io.ReadAll(io.LimitReader(r, maxAnswer))
		return code, body, err
	}
	body := make([]byte, length)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, fmt.Errorf("answer shorter than its Content-Length: %v", err)
	}
	return code, body, nil
}

// readResponseHead reads an answer's head, past any 100 Continue: its
// status, its Content-Length (-1 when absent), and whether its body is
// chunked (a stream).
func readResponseHead(r *bufio.Reader) (code int, length int64, chunked bool, err error) {
	for first := true; ; first = false {
		budget := maxHeader
		status, err := readLine(r, &budget, 431)
		if err != nil {
			if first && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
				return 0, 0, false, fmt.Errorf("%w (%v)", errNoAnswer, err)
			}
			return 0, 0, false, fmt.Errorf("no answer: %v", err)
		}
		if code, err = httpwire.ParseStatusLine(status); err != nil {
			return 0, 0, false, err
		}
		length, chunked = -1, false
		for {
			line, err := readLine(r, &budget, 431)
			if err != nil {
				return 0, 0, false, fmt.Errorf("answer ended in its head: %v", err)
			}
			if line == "" {
				break
			}
			name, value, err := httpwire.ParseHeaderLine(line)
			if err != nil {
				return 0, 0, false, fmt.Errorf("bad answer: %v", err)
			}
			switch {
			case strings.EqualFold(name, "Content-Length"):
				if length, err = httpwire.ParseContentLength(value); err != nil || length > maxAnswer {
					return 0, 0, false, fmt.Errorf("bad answer: Content-Length %q", value)
				}
			case strings.EqualFold(name, "Transfer-Encoding"):
				chunked = strings.EqualFold(strings.TrimSpace(value), "chunked")
			}
		}
		if code >= 200 {
			return code, length, chunked, nil
		}
		// 100 Continue: the final answer follows.
	}
}

// chunkReader reads a chunked body (as tend sends it: no extensions, no
// trailers) up to its last chunk.
func chunkReader(r *bufio.Reader) io.Reader { return &chunks{r: r} }

type chunks struct {
	r    *bufio.Reader
	left uint64 // of the current chunk
	done bool
}

func (c *chunks) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		budget := maxHeader
		line, err := readLine(c.r, &budget, 400)
		if err != nil {
			return 0, err
		}
		if c.left, err = strconv.ParseUint(line, 16, 32); err != nil {
			return 0, fmt.Errorf("bad chunk size %q", line)
		}
		if c.left == 0 {
			c.done = true
		}
	}
	n, err := c.r.Read(p[:min(uint64(len(p)), c.left)])
	c.left -= uint64(n)
	if c.left == 0 && err == nil {
		budget := maxHeader
		_, err = readLine(c.r, &budget, 400) // the CRLF after the data
	}
	return n, err
}
