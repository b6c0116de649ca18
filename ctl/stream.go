package ctl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/tend-init/tend/httpwire"
	"github.com/tend-init/tend/supervise"
)

// logs runs `tend ctl logs [-f] [-n N] [NAME]`.
func (c *client) logs(params []string) int {
	follow, n, name := false, "", ""
	for i := 0; i < len(params); i++ {
		switch p := params[i]; {
		case p == "-f" || p == "--follow":
			follow = true
		case p == "-n" && i+1 < len(params):
			n = params[i+1]
			i++
		case len(p) > 2 && p[:2] == "-n":
			n = p[2:]
		case name == "" && p != "" && p[0] != '-':
			name = p
		default:
			fmt.Fprintf(c.errw, "tend ctl: bad use of \"logs\"\n%s\n", ctlUsage)
			return 2
		}
	}
	if n != "" {
		if _, err := strconv.ParseUint(n, 10, 31); err != nil {
			fmt.Fprintf(c.errw, "tend ctl: -n wants a number of lines, not %q\n", n)
			return 2
		}
	}
	path := "/v1/logs"
	if name != "" {
		path = "/v1/services/" + url.PathEscape(name) + "/logs"
	}
	q := url.Values{}
	if n != "" {
		q.Set("n", n)
	}
	if follow {
		q.Set("follow", "1")
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if follow {
		return c.stream(path, c.logLine)
	}
	return c.show("GET", path, nil, func(data []byte) error {
		var answer struct {
			Lines []json.RawMessage `json:"lines"`
		}
		if err := json.Unmarshal(data, &answer); err != nil {
			return fmt.Errorf("unreadable answer: %v", err)
		}
		for _, l := range answer.Lines {
			if err := c.logLine(l); err != nil {
				return err
			}
		}
		return nil
	})
}

// logLine prints one line as "TIME NAME | LINE", or as it came with --json.
func (c *client) logLine(raw []byte) error {
	if c.json {
		_, err := fmt.Fprintf(c.out, "%s\n", c.jsonOut(raw))
		return err
	}
	var l supervise.LogLine
	if err := json.Unmarshal(raw, &l); err != nil {
		return fmt.Errorf("unreadable line: %v", err)
	}
	_, err := fmt.Fprintf(c.out, "%s %s | %s\n", l.Time.Local().Format("15:04:05.000"), c.text(l.Service), c.text(l.Line))
	return err
}

// event prints one happening for people, or as it came with --json.
func (c *client) event(raw []byte) error {
	if c.json {
		_, err := fmt.Fprintf(c.out, "%s\n", c.jsonOut(raw))
		return err
	}
	var e supervise.Happening
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("unreadable event: %v", err)
	}
	at := e.Time.Local().Format("15:04:05.000")
	svc, why := c.text(e.Service), c.text(e.Reason)
	var err error
	switch {
	case e.Kind == supervise.KindState:
		_, err = fmt.Fprintf(c.out, "%s %s %s → %s: %s\n", at, svc, c.text(string(e.From)), c.text(string(e.To)), why)
	case e.Kind == supervise.KindReady && e.Ready != nil:
		_, err = fmt.Fprintf(c.out, "%s %s %s: %s\n", at, svc, map[bool]string{true: "ready", false: "not ready"}[*e.Ready], why)
	case e.Kind == supervise.KindHealth && e.Healthy != nil:
		_, err = fmt.Fprintf(c.out, "%s %s %s: %s\n", at, svc, map[bool]string{true: "healthy", false: "unhealthy"}[*e.Healthy], why)
	default:
		_, err = fmt.Fprintf(c.out, "%s %s: %s\n", at, c.text(string(e.Kind)), why)
	}
	return err
}

// dropped reads the last object of a stream that tend dropped because
// its reader fell too far behind.
func dropped(line []byte) (reason string, ok bool) {
	if !bytes.Contains(line, []byte(`"dropped":`)) { // in a line's text it would be \"dropped\"
		return "", false
	}
	var d struct {
		Dropped bool   `json:"dropped"`
		Reason  string `json:"reason"`
	}
	if json.Unmarshal(line, &d) != nil || !d.Dropped {
		return "", false
	}
	if d.Reason == "" {
		d.Reason = "dropped"
	}
	return d.Reason, true
}

// stream GETs a streamed resource and hands each line to print until tend
// ends the stream (or exits): exit status 0. A stream that tend dropped
// because it was read too slowly says so last: it is told on stderr, exit
// status 3 (with --json the notice is printed as it came, too). A refusal
// is explained as show does, with status 1.
func (c *client) stream(path string, print func([]byte) error) int {
	conn, err := c.dial()
	if err != nil {
		c.unreachable(err)
		return 1
	}
	defer conn.Close()
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: tend\r\nConnection: close\r\n\r\n", path); err != nil {
		c.unreachable(err)
		return 1
	}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	code, length, chunked, err := httpwire.ReadResponseHead(r)
	if err != nil {
		c.unreachable(err)
		return 1
	}
	if code != 200 || !chunked {
		var body []byte
		if length >= 0 {
			body = make([]byte, length)
			_, _ = io.ReadFull(r, body)
		}
		c.explain(code, body)
		return 1
	}
	conn.SetReadDeadline(time.Time{}) // a stream may be quiet for hours
	lines := bufio.NewReader(httpwire.ChunkReader(r))
	for {
		line, err := lines.ReadBytes('\n')
		if line = bytes.TrimSuffix(line, []byte("\n")); len(line) > 0 {
			if why, ok := dropped(line); ok {
				if c.json {
					fmt.Fprintf(c.out, "%s\n", c.jsonOut(line))
				}
				fmt.Fprintf(c.errw, "tend ctl: %s (the reader was too slow)\n", c.errText(why))
				return exitDropped
			}
			if perr := print(line); perr != nil {
				fmt.Fprintf(c.errw, "tend ctl: %v\n", perr)
				return 1
			}
		}
		if err != nil {
			return 0
		}
	}
}
