package httpwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// The server's side, writing: the answer, always followed by the end of
// the connection.

// Response is an answer: a status code and a value to encode as JSON, or
// Text as it is, or a Stream of lines.
type Response struct {
	Code        int
	Body        any
	Allow       string // for 405
	ContentType string // for Text and Stream; JSON otherwise
	Text        []byte
	// Head, for a HEAD request, sends the head alone: the Content-Length
	// is the body's, and the body is left out (RFC 9110 section 9.3.2).
	Head bool
	// Stream, when set, is answered with a chunked body: it calls send for
	// each piece until there is no more, send fails (the client is gone or
	// too slow), or stop is closed (tend is exiting).
	Stream func(send func([]byte) error, stop <-chan struct{})
}

// ErrorResponse is a refusal: the status and {"error": msg}, the shape of
// every error the control API gives.
func ErrorResponse(code int, msg string) Response {
	return Response{Code: code, Body: map[string]string{"error": msg}}
}

// WriteResponse writes an answer and nothing after it.
func WriteResponse(w io.Writer, resp Response) error {
	var head bytes.Buffer
	if resp.Stream != nil {
		fmt.Fprintf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n", resp.Code, StatusText(resp.Code), resp.ContentType)
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
	fmt.Fprintf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n", resp.Code, StatusText(resp.Code), contentType, len(body))
	if resp.Allow != "" {
		fmt.Fprintf(&head, "Allow: %s\r\n", resp.Allow)
	}
	head.WriteString("\r\n")
	if resp.Head {
		_, err := w.Write(head.Bytes())
		return err
	}
	_, err := w.Write(append(head.Bytes(), body...))
	return err
}

// WriteChunk sends one piece of a chunked body; an empty one ends it.
func WriteChunk(w io.Writer, p []byte) error {
	buf := fmt.Appendf(nil, "%x\r\n", len(p))
	buf = append(append(buf, p...), "\r\n"...)
	_, err := w.Write(buf)
	return err
}

// StatusText is the reason phrase of each status tend answers with.
func StatusText(code int) string {
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
