package httpwire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
)

// The client's side: tend ctl reading tend's answers.

// ErrNoAnswer: tend closed the connection before a byte of an answer. It
// does that only to a request it has not taken: to make room for others
// while this client had sent nothing yet, or as it shuts down.
var ErrNoAnswer = errors.New("tend closed the connection without an answer")

// maxAnswer bounds what tend ctl reads of an answer.
const maxAnswer = 16 << 20

// ReadResponse parses an answer for tend ctl: interim 1xx answers are
// skipped, the body is read to its Content-Length (or to the end, bounded).
func ReadResponse(r *bufio.Reader) (int, []byte, error) {
	code, length, chunked, err := ReadResponseHead(r)
	if err != nil {
		return 0, nil, err
	}
	if chunked {
		body, err := io.ReadAll(io.LimitReader(ChunkReader(r), maxAnswer))
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

// ReadResponseHead reads an answer's head, past any 100 Continue: its
// status, its Content-Length (-1 when absent), and whether its body is
// chunked (a stream).
func ReadResponseHead(r *bufio.Reader) (code int, length int64, chunked bool, err error) {
	for first := true; ; first = false {
		budget := MaxHeader
		status, err := readLine(r, &budget, 431)
		if err != nil {
			if first && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
				return 0, 0, false, fmt.Errorf("%w (%v)", ErrNoAnswer, err)
			}
			return 0, 0, false, fmt.Errorf("no answer: %v", err)
		}
		if code, err = ParseStatusLine(status); err != nil {
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
			name, value, err := ParseHeaderLine(line)
			if err != nil {
				return 0, 0, false, fmt.Errorf("bad answer: %v", err)
			}
			switch {
			case strings.EqualFold(name, "Content-Length"):
				if length, err = ParseContentLength(value); err != nil || length > maxAnswer {
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

// ChunkReader reads a chunked body (as tend sends it: no extensions, no
// trailers) up to its last chunk.
func ChunkReader(r *bufio.Reader) io.Reader { return &chunks{r: r} }

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
		budget := MaxHeader
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
		budget := MaxHeader
		_, err = readLine(c.r, &budget, 400) // the CRLF after the data
	}
	return n, err
}
