package control

import (
	"bufio"
	"context"
	"errors"
	"net"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/httpwire"
)

// maxScrapers bounds the metrics connections served at once; more wait in
// the listen backlog.
const maxScrapers = 4

// ServeMetrics answers GET /metrics, and nothing else, over TCP on addr
// (metrics_listen), for scrapers that cannot reach the unix socket; metrics
// is the API's answer to it (api.Handler.Metrics). It is read-only, so it
// does not ask who connects; bind it to an address only the scraper can
// reach. It stops when ctx ends.
func ServeMetrics(ctx context.Context, addr string, metrics func(*httpwire.Request) httpwire.Response, log *logrus.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	slots := make(chan struct{}, maxScrapers)
	guard.Go("metrics listener closer", func() { <-ctx.Done(); l.Close() })
	guard.Go("metrics listener", func() {
		acceptLoop(ctx, "metrics_listen "+addr, log, l.Accept, nil, func(conn net.Conn) bool {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				conn.Close()
				return false
			}
			guard.Go("metrics connection", func() {
				defer func() { <-slots }()
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(headTimeout + writeTimeout))
				req, err := httpwire.ReadRequest(bufio.NewReaderSize(conn, 4096), func(bool) error { return nil })
				var resp httpwire.Response
				switch {
				case err != nil:
					var he *httpwire.Error
					if !errors.As(err, &he) {
						return
					}
					resp = httpwire.ErrorResponse(he.Code, he.Msg)
				case req.Path != "/metrics":
					resp = httpwire.ErrorResponse(404, "only /metrics is served here")
				default:
					resp = metrics(req)
				}
				httpwire.WriteResponse(conn, resp)
			})
			return true
		})
	})
	return nil
}
