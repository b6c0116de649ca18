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
	// one that is in both is sent once (it is not newer than the last kept).
	lines, stop, err := a.sup.FollowLogs(name)
	if err != nil {
		return failure(err)
	}
	recent, err := a.sup.Logs(name, n)
	if err != nil {
		stop()
		return failure(err)
	}
	if none {
		recent = nil
	}
	return httpwire.Response{Code: 200, ContentType: "application/x-ndjson", Stream: func(send func([]byte) error, done <-chan struct{}) {
		defer stop()
		var last supervise.LogLine
		for _, l := range recent {
			if send(jsonLine(l)) != nil {
				return
			}
			last = l
		}
		overlap := len(recent) > 0 // lines kept and followed both come first
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					return // too slow: dropped
				}
				if overlap && !l.Time.After(last.Time) {
					continue
				}
				overlap = false
				if send(jsonLine(l)) != nil {
					return
				}
			case <-done:
				return
			}
		}
	}}
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
		for {
			select {
			case e, ok := <-events:
				if !ok {
					return // too slow: dropped
				}
				if send(jsonLine(e)) != nil {
					return
				}
			case <-done:
				return
			}
		}
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

func jsonLine(v any) []byte {
	b, _ := json.Marshal(v)
	return append(b, '\n')
}
