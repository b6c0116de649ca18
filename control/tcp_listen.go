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

// tend's TCP listeners: metrics_listen (GET /metrics) and health_listen
// (GET /livez and /readyz), or one listener for both when the two keys
// name the same address. Anyone who can reach the port can open
// connections that send nothing, and a scraper must still be answered
// well within Prometheus' 10 s scrape_timeout, a kubelet's probe within
// its 1 s timeoutSeconds. So a listener holds its connections in the
// control socket's slots (slots.go), behind a deferred accept
// (deferAccept): a newcomer takes the place of an idle connection instead
// of waiting behind it. The bound is on the fds and goroutines a stranger
// can take.
const (
	// MetricsSlots: a few scrapers at a time is all a metrics endpoint
	// serves.
	MetricsSlots = 4
	// HealthSlots: a kubelet's liveness and readiness probes, and the
	// health checkers of a load balancer, which probe from several places
	// at once.
	HealthSlots = 8
)

// ServeTCP answers over TCP on addr what handle serves (api.Handler.Public:
// the paths of the keys that name addr), with at most slots connections
// at once. key names the listener in the log ("health_listen"). It does
// not ask who connects: bind it to an address that only the scraper or
// prober can reach. It stops when ctx ends. The error is a listener that
// cannot be had (the address is in use, say).
func ServeTCP(ctx context.Context, key, addr string, slots int, handle func(*httpwire.Request) httpwire.Response, log *logrus.Logger) error {
	l, deferErr, err := listenTCP(addr)
	if err != nil {
		return err
	}
	if deferErr != nil {
		log.Warnf("%s %s: %v; the listener works without it, but idle clients that reconnect at once could have a request closed before it arrives", key, addr, deferErr)
	}
	serveTCP(ctx, l, key+" "+addr, slots, handle, log)
	return nil
}

// deferAccept is the TCP_DEFER_ACCEPT of a TCP listener: the kernel
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

// listenTCP listens on addr with deferAccept set. A kernel that refuses
// the option (deferErr) still gets a listener: the slots alone keep idle
// clients from holding it.
func listenTCP(addr string) (l *net.TCPListener, deferErr, err error) {
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

// tcpAcceptor is a TCP listener: a *net.TCPListener, or a test's wrapper.
type tcpAcceptor interface {
	AcceptTCP() (*net.TCPConn, error)
	Close() error
}

// tcpServer is a TCP listener's state.
type tcpServer struct {
	handle func(*httpwire.Request) httpwire.Response
	slots  *slots[*net.TCPConn]
}

// serveTCP runs the accept loop on l until ctx ends, then closes l and
// the connections still sending their request (an answer being written
// is finished, within writeTimeout). name is the listener in the log
// ("health_listen 0.0.0.0:8080").
func serveTCP(ctx context.Context, l tcpAcceptor, name string, slots int, handle func(*httpwire.Request) httpwire.Response, log *logrus.Logger) *tcpServer {
	m := &tcpServer{handle: handle, slots: newSlots[*net.TCPConn](slots)}
	guard.Go(name+" listener", func() {
		acceptLoop(ctx, name, log, l.AcceptTCP, m.slots.evictOne, m.take)
	})
	guard.Go(name+" listener closer", func() {
		<-ctx.Done()
		l.Close()
		m.slots.closeReading()
	})
	return m
}

// take gives an accepted connection a slot and a goroutine, or refuses it
// with a 503 when every slot is answering: the accept loop never waits
// for a slot, so nothing queues behind a connection that holds one.
func (m *tcpServer) take(conn *net.TCPConn) bool {
	return m.slots.take(conn, "TCP connection", m.serveConn)
}

// serveConn answers the one request of a connection, under the control
// socket's deadlines: the head within headTimeout of the accept (an idle
// client that nobody evicts is gone after that), the answer within
// writeTimeout.
func (m *tcpServer) serveConn(slot *connSlot[*net.TCPConn]) {
	conn := slot.conn
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(headTimeout))
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	req := readRequest(m.slots, slot)
	if req == nil || !m.slots.answering(slot) {
		return // refused by the grammar and answered, gone, or evicted
	}
	resp := m.handle(req)
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	httpwire.WriteResponse(conn, resp)
}
