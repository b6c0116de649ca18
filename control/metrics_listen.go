package control

import (
	"bufio"
	"context"
	"errors"
	"net"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tend-init/tend/guard"
)

// maxScrapers bounds the metrics connections served at once; more wait in
// the listen backlog.
const maxScrapers = 4

// ServeMetrics answers GET /metrics, and nothing else, over TCP on addr
// (metrics_listen), for scrapers that cannot reach the unix socket. It is
// read-only, so it does not ask who connects; bind it to an address only
// the scraper can reach. It stops when ctx ends.
func ServeMetrics(ctx context.Context, addr string, sup Supervisor, log *logrus.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	a := api{&Handler{sup: sup, log: log}}
	slots := make(chan struct{}, maxScrapers)
	guard.Go("metrics listener closer", func() { <-ctx.Done(); l.Close() })
	guard.Go("metrics listener", func() {
		backoff := time.Duration(0)
		for {
			conn, err := l.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// Out of fds, say: wait, as the control socket does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return
				}
				continue
			}
			backoff = 0
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				conn.Close()
				return
			}
			guard.Go("metrics connection", func() {
				defer func() { <-slots }()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(headTimeout + writeTimeout))
				req, err := readRequest(bufio.NewReaderSize(conn, 4096), func(bool) error { return nil })
				var resp Response
				switch {
				case err != nil:
					var he *httpError
					if !errors.As(err, &he) {
						return
					}
					resp = errorResponse(he.Code, he.Msg)
				case req.Path != "/metrics":
					resp = errorResponse(404, "only /metrics is served here")
				default:
					resp = route(req, "GET", a.metrics)
				}
				writeResponse(conn, resp)
			})
		}
	})
	return nil
}
