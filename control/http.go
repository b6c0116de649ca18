package control

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// The control socket speaks a strict subset of HTTP/1.1: one request per
// connection, a body only with Content-Length, the answer always JSON and
// followed by the end of the connection. That is all curl --unix-socket and
// tend ctl need, and it keeps net/http (with crypto/tls and HTTP/2, which
// more than double the binary and slow every start of tend) out of PID 1.

// Request is a parsed request.
type Request struct {
	Method string
	Path   string // as sent (percent-encoded), without the query
	Body   []byte
}

// Response is an answer: a status code and a value to encode as JSON.
type Response struct {
	Code  int
	Body  any
	Allow string // for 405
}

// httpError is a request the parser refuses, with the status to answer.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func bad(code int, format string, a ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, a...)}
}

const maxHeaderLines = 64

// readRequest parses one request from r, which the caller limits in time.
func readRequest(r *bufio.Reader) (*Request, error) {
	budget := maxHeader
	line, err := readLine(r, &budget)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || parts[0] == "" || !strings.HasPrefix(parts[2], "HTTP/1.") {
		if len(parts) == 3 && strings.HasPrefix(parts[2], "HTTP/") {
			return nil, bad(505, "only HTTP/1.x is spoken here")
		}
		return nil, bad(400, "malformed request line")
	}
	for _, c := range parts[0] {
		if c < 'A' || c > 'Z' {
			return nil, bad(400, "malformed method")
		}
	}
	target := parts[1]
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if !strings.HasPrefix(target, "/") {
		// An absolute URI (http://host/path) is allowed by HTTP/1.1.
		u, err := url.Parse(target)
		if err != nil || u.Path == "" {
			return nil, bad(400, "malformed request target")
		}
		target = u.EscapedPath()
	}
	if _, err := url.PathUnescape(target); err != nil {
		return nil, bad(400, "malformed request target: %v", err)
	}
	req := &Request{Method: parts[0], Path: target}

	length := -1
	for n := 0; ; n++ {
		if n > maxHeaderLines {
			return nil, bad(431, "too many header lines")
		}
		line, err := readLine(r, &budget)
		if err != nil {
			return nil, err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, bad(400, "malformed header line")
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(name) {
		case "content-length":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return nil, bad(400, "bad Content-Length")
			}
			length = n
		case "transfer-encoding":
			return nil, bad(411, "send the body with a Content-Length")
		}
	}
	if length > maxBody {
		return nil, bad(413, "the body is over %d bytes", maxBody)
	}
	if length > 0 {
		req.Body = make([]byte, length)
		if _, err := io.ReadFull(r, req.Body); err != nil {
			return nil, bad(400, "the body is shorter than its Content-Length")
		}
	}
	return req, nil
}

// readLine reads one CRLF (or LF) line, charging it to budget.
func readLine(r *bufio.Reader, budget *int) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		*budget -= len(chunk)
		if *budget < 0 {
			return "", bad(431, "the request head is over %d bytes", maxHeader)
		}
		line = append(line, chunk...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return "", io.EOF
		}
		return "", bad(400, "the request ended early")
	}
	line = bytes.TrimRight(line, "\r\n")
	for _, c := range line {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return "", bad(400, "control characters in the request head")
		}
	}
	return string(line), nil
}

// writeResponse writes an answer and nothing after it.
func writeResponse(w io.Writer, resp Response) error {
	body, err := json.MarshalIndent(resp.Body, "", "  ")
	if err != nil {
		body, _ = json.Marshal(map[string]string{"error": "cannot encode the answer"})
		resp.Code = 500
	}
	body = append(body, '\n')
	var head bytes.Buffer
	fmt.Fprintf(&head, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n", resp.Code, statusText(resp.Code), len(body))
	if resp.Allow != "" {
		fmt.Fprintf(&head, "Allow: %s\r\n", resp.Allow)
	}
	head.WriteString("\r\n")
	_, err = w.Write(append(head.Bytes(), body...))
	return err
}

func statusText(code int) string {
	switch code {
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
	case 409:
		return "Conflict"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 422:
		return "Unprocessable Content"
	case 431:
		return "Request Header Fields Too Large"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status"
}

// readResponse parses an answer of the subset above, for tend ctl.
func readResponse(r *bufio.Reader) (int, []byte, error) {
	status, err := r.ReadString('\n')
	if err != nil {
		return 0, nil, fmt.Errorf("no answer: %v", err)
	}
	fields := strings.Fields(status)
	if len(fields) < 2 || !strings.HasPrefix(fields[0], "HTTP/1.") {
		return 0, nil, fmt.Errorf("not an HTTP answer: %q", strings.TrimSpace(status))
	}
	code, err := strconv.Atoi(fields[1])
	if err != nil {
		return 0, nil, fmt.Errorf("bad status %q", fields[1])
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return 0, nil, fmt.Errorf("answer ended in its head: %v", err)
		}
		if strings.TrimRight(line, "\r\n") == "" {
			break
		}
	}
	body, err := io.ReadAll(io.LimitReader(r, 16<<20))
	return code, body, err
}
