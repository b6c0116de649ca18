package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"

	"github.com/tend-init/tend/httpwire"
	"github.com/tend-init/tend/supervise"
)

// The operating resources: a service's recent output, the event stream and
// the metrics (SPEC section 7).

// maxLines bounds ?n= for the logs; allLines is the default for every
// service at once (one service's default is all its ring keeps).
const (
	maxLines = 10000
	allLines = 1000
)

// logs answers GET /v1/services/NAME/logs and GET /v1/logs (every service):
// ?n=N the last N lines (default: all that NAME's ring keeps, or the last
// 1,000 of every service), ?follow=1 then new lines as they come, one JSON
// object a line.
func (a api) logs(req *httpwire.Request, name string) httpwire.Response {
	q, err := url.ParseQuery(req.Query)
	if err != nil {
		return httpwire.ErrorResponse(400, "malformed query: "+err.Error())
	}
	n := 0
	if name == "" {
		n = allLines
	}
	if v, ok := q["n"]; ok {
		if n, err = parseCount(v[len(v)-1]); err != nil {
			return httpwire.ErrorResponse(400, err.Error())
		}
	}
	follow := false
	if v, ok := q["follow"]; ok {
		switch v[len(v)-1] {
		case "", "1", "true":
			follow = true
		case "0", "false":
		default:
			return httpwire.ErrorResponse(400, "follow must be 1 or 0")
		}
	}
	none := q.Has("n") && n == 0 // ?n=0: no kept lines (only new ones, with follow)
	if !follow {
		lines, err := a.sup.Logs(name, n)
		if none {
			lines = nil
		}
		if err != nil {
			return failure(err)
		}
		if lines == nil {
			lines = []supervise.LogLine{}
		}
		return httpwire.Response{Code: 200, Body: map[string]any{"lines": lines}}
	}
	// Follow first, then read what is kept: no line falls between the two;
	// one that is in both is sent once (its Seq is not above the last kept
	// one's). Seq, not time: the wall clock may go back.
	f, err := a.sup.FollowLogs(name)
	if err != nil {
		return failure(err)
	}
	recent, err := a.sup.Logs(name, n)
	if err != nil {
		f.Stop()
		return failure(err)
	}
	if none {
		recent = nil
	}
	return httpwire.Response{Code: 200, ContentType: "application/x-ndjson", Stream: func(send func([]byte) error, done <-chan struct{}) {
		defer f.Stop()
		var last uint64
		var buf []byte
		// put sends lines in chunks of about streamBatch, those not
		// above the last sent skipped; false: the client is gone.
		put := func(lines []supervise.LogLine) bool {
			buf = buf[:0]
			for _, l := range lines {
				if l.Seq <= last {
					continue
				}
				last = l.Seq
				if buf = append(buf, jsonLine(l)...); len(buf) >= streamBatch {
					if send(buf) != nil {
						return false
					}
					buf = buf[:0]
				}
			}
			return len(buf) == 0 || send(buf) == nil
		}
		if !put(recent) {
			return
		}
		// Each wake-up takes every line that came since the last: a burst
		// of thousands goes out in a few chunks, not one line per turn.
		for {
			select {
			case <-f.Ready():
			case <-done:
				return
			}
			lines, behind := f.Take()
			if !put(lines) {
				return
			}
			if behind > 0 {
				send(droppedLine(behind, "lines"))
				return
			}
		}
	}}
}

// streamBatch is about the most a stream sends in one chunk.
const streamBatch = 64 << 10

// forward sends what ch brings until done or until ch is closed, which is
// a subscriber dropped for lagging behind: that is said last. Whatever
// waits in ch goes out in one chunk, up to streamBatch: one write for many
// events, not one each. (The logs stream takes its lines from a
// supervise.Follower instead.)
func forward[T any](ch <-chan T, done <-chan struct{}, send func([]byte) error, what string, add func([]byte, T) []byte) {
	var buf []byte
	for {
		select {
		case v, ok := <-ch:
			buf = buf[:0]
		gather:
			for ok {
				buf = add(buf, v)
				if len(buf) >= streamBatch {
					break
				}
				select {
				case v, ok = <-ch:
				default:
					break gather
				}
			}
			if len(buf) > 0 && send(buf) != nil {
				return
			}
			if !ok {
				send(droppedLine(cap(ch), what))
				return
			}
		case <-done:
			return
		}
	}
}

// dropped is the last object of a stream whose reader fell too far
// behind: it tells "too slow" from "tend ended", which ends the stream
// without it.
type dropped struct {
	Dropped bool   `json:"dropped"`
	Behind  int    `json:"behind"`
	Reason  string `json:"reason"`
}

// droppedLine reports a follower dropped for lagging behind lines or
// events: for events, a channel closed before its reader stopped was
// full, so its capacity is how far behind it was; a log Follower says.
func droppedLine(behind int, what string) []byte {
	return jsonLine(dropped{Dropped: true, Behind: behind, Reason: fmt.Sprintf("dropped: %d %s behind", behind, what)})
}

// parseCount reads ?n=: digits only, 0 to maxLines.
func parseCount(v string) (int, error) {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fmt.Errorf("n must be a number of lines, 0 to %d", maxLines)
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil || n > maxLines {
		return 0, fmt.Errorf("n must be a number of lines, 0 to %d", maxLines)
	}
	return n, nil
}

// events answers GET /v1/events: every state change, readiness and health
// change, reload and shutdown step from now on, one JSON object a line.
func (a api) events() httpwire.Response {
	events, stop := a.sup.SubscribeEvents()
	return httpwire.Response{Code: 200, ContentType: "application/x-ndjson", Stream: func(send func([]byte) error, done <-chan struct{}) {
		defer stop()
		forward(events, done, send, "events", func(b []byte, e supervise.Happening) []byte {
			return append(b, jsonLine(e)...)
		})
	}}
}

// metrics answers GET /metrics in the Prometheus text format.
func (a api) metrics() httpwire.Response {
	b, err := a.sup.Metrics()
	if err != nil {
		return failure(err)
	}
	return httpwire.Response{Code: 200, ContentType: "text/plain; version=0.0.4; charset=utf-8", Text: b}
}

// probe answers GET /livez (what is "live") and GET /readyz ("ready"):
// 200 when check says yes, else 503 with its reasons. The body is text,
// "ok" or "not live:" and a reason a line, for people and for load
// balancers that match a body; ?format=json gives {"live": true} or
// {"live": false, "reasons": [...]} instead. A query parameter, not an
// Accept header, because many load balancers' health checks let one set
// only a path.
func (a api) probe(req *httpwire.Request, what string, check func() (bool, []string, error)) httpwire.Response {
	q, err := url.ParseQuery(req.Query)
	if err != nil {
		return httpwire.ErrorResponse(400, "malformed query: "+err.Error())
	}
	asJSON := false
	if v, ok := q["format"]; ok {
		switch v[len(v)-1] {
		case "text":
		case "json":
			asJSON = true
		default:
			return httpwire.ErrorResponse(400, "format must be text or json")
		}
	}
	ok, reasons, err := check()
	if err != nil {
		ok, reasons = false, []string{err.Error()}
	}
	code := 200
	if !ok {
		code = 503
	}
	if asJSON {
		body := map[string]any{what: ok}
		if !ok {
			body["reasons"] = reasons
		}
		return httpwire.Response{Code: code, Body: body}
	}
	text := "ok\n"
	if !ok {
		text = "not " + what + ":\n"
		for _, r := range reasons {
			text += "  " + r + "\n"
		}
	}
	return httpwire.Response{Code: code, ContentType: "text/plain; charset=utf-8", Text: []byte(text)}
}

func jsonLine(v any) []byte {
	b, _ := json.Marshal(v)
	return append(b, '\n')
}
