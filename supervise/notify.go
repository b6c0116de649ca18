package supervise

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"

	"github.com/tend-init/tend/guard"
)

// notifySocket receives sd_notify(3) datagrams from one service, so that
// daemons written for systemd's Type=notify work unchanged. Its address is
// in the abstract namespace ("@..."): nothing to create on disk or clean up,
// and every sd_notify implementation accepts it.
type notifySocket struct {
	conn *net.UnixConn
	addr string
}

var notifySeq atomic.Uint64

func openNotify(service string) (*notifySocket, error) {
	addr := fmt.Sprintf("@tend/%d/%s/%d", os.Getpid(), service, notifySeq.Add(1))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	return &notifySocket{conn: conn, addr: addr}, nil
}

// notifyMsg is one datagram's assignments, e.g. READY=1, STATUS=...
type notifyMsg struct {
	svc    *service
	fields map[string]string
}

// serve reads datagrams until the socket is closed.
func (n *notifySocket) serve(svc *service, post func(any)) {
	guard.Go("notify socket of "+svc.spec.Name, func() {
		buf := make([]byte, 4096)
		for {
			k, err := n.conn.Read(buf)
			if err != nil {
				return
			}
			fields := map[string]string{}
			for _, line := range strings.Split(string(buf[:k]), "\n") {
				if key, value, ok := strings.Cut(line, "="); ok {
					fields[key] = value
				}
			}
			post(notifyMsg{svc: svc, fields: fields})
		}
	})
}

func (n *notifySocket) close() { n.conn.Close() }
