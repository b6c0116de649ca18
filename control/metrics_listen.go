package control

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/httpwire"
)

// maxScrapers bounds the metrics connections served at once. They are
// held by the control socket's slots (slots.go), behind a deferred accept
// (deferAccept), so a newcomer takes the place of an idle connection
// instead of waiting behind it: anyone who can reach the port can open
// connections that send nothing, and a scraper must still be answered
// well within Prometheus' 10 s scrape_timeout. A few scrapers at a time
// is all a metrics endpoint serves; the bound is on the fds and
// goroutines a stranger can take.
const maxScrapers = 4

// ServeMetrics answers GET /metrics, and nothing else, over TCP on addr
// (metrics_listen), for scrapers that cannot reach the unix socket; metrics
// is the API's answer to it (api.Handler.Metrics). It is read-only, so it
// does not ask who connects; bind it to an address only the scraper can
// reach. It stops when ctx ends.
func ServeMetrics(ctx context.Context, addr string, metrics func(*httpwire.Request) httpwire.Response, log *logrus.Logger) error {
	l, deferErr, err := listenMetrics(addr)
	if err != nil {
		return err
	}
	if deferErr != nil {
		log.Warnf("metrics_listen %s: %v; the listener works without it, but idle clients that reconnect at once could have a scrape closed before its request arrives", addr, deferErr)
	}
	serveMetrics(ctx, l, addr, metrics, log)
	return nil
}

// deferAccept is the TCP_DEFER_ACCEPT of the metrics listener: the kernel
// hands tend a connection only once its first bytes have arrived, or
// after about this long (its SYN-ACK resent once) without any. The slots
// make room for a newcomer by closing the oldest idle connection, and a
// flood of idle clients that reconnect as soon as they are closed turns
// the slots over so fast that a scraper accepted a moment before its
// request arrived would be closed as idle too. With the deferral a
// scraper's request is in its socket when tend accepts it, so it is never
// taken for idle, and an idle client costs tend nothing (no fd, no
// goroutine) for that second and then meets the slots and the head
// deadline. One second is nothing to an HTTP client, which sends its
// request as it connects.
const deferAccept = 1 // second

// listenMetrics listens on addr with deferAccept set. A kernel that
// refuses the option (deferErr) still gets a listener: the slots alone
// keep idle clients from holding it.
func listenMetrics(addr string) (l *net.TCPListener, deferErr, err error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferAccept); err != nil {
				deferErr = fmt.Errorf("setting TCP_DEFER_ACCEPT: %w", err)
			}
		})
	}}
	nl, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	return nl.(*net.TCPListener), deferErr, nil
}

// tcpAcceptor is the metrics listener: a *net.TCPListener, or a test's
// wrapper.
type tcpAcceptor interface {
	AcceptTCP() (*net.TCPConn, error)
	Close() error
}

// metricsServer is the metrics listener's state.
type metricsServer struct {
	metrics func(*httpwire.Request) httpwire.Response
	slots   *slots[*net.TCPConn]
}

// serveMetrics runs the accept loop on l until ctx ends, then closes l and
// the connections still sending their request (an answer being written
// is finished, within writeTimeout).
func serveMetrics(ctx context.Context, l tcpAcceptor, addr string, metrics func(*httpwire.Request) httpwire.Response, log *logrus.Logger) *metricsServer {
	m := &metricsServer{metrics: metrics, slots: newSlots[*net.TCPConn](maxScrapers)}
	guard.Go("metrics listener", func() {
		acceptLoop(ctx, "metrics_listen "+addr, log, l.AcceptTCP, m.slots.evictOne, m.take)
	})
	guard.Go("metrics listener closer", func() {
		<-ctx.Done()
		l.Close()
		m.slots.closeReading()
	})
	return m
}

// take gives an accepted connection a slot and a goroutine, or refuses it
// with a 503 when every slot is answering: the accept loop never waits
// for a slot, so nothing queues behind a connection that holds one.
func (m *metricsServer) take(conn *net.TCPConn) bool {
	return m.slots.take(conn, "metrics connection", m.serveConn)
}

// serveConn answers the one request of a connection, under the control
// socket's deadlines: the head within headTimeout of the accept (an idle
// client that nobody evicts is gone after that), the answer within
// writeTimeout.
func (m *metricsServer) serveConn(slot *connSlot[*net.TCPConn]) {
	conn := slot.conn
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(headTimeout))
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	req := readRequest(m.slots, slot)
	if req == nil || !m.slots.answering(slot) {
		return // refused by the grammar and answered, gone, or evicted
	}
	resp := httpwire.ErrorResponse(404, "only /metrics is served here")
	if req.Path == "/metrics" {
		resp = m.metrics(req)
	}
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	httpwire.WriteResponse(conn, resp)
}
