package supervise

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/tree"
)

// notifySocket receives sd_notify(3) datagrams from one service, so that
// daemons written for systemd's Type=notify work unchanged. Its address is
// in the abstract namespace ("@..."): nothing to create on disk or clean up,
// and every sd_notify implementation accepts it.
//
// Only the service's own processes count, as systemd's NotifyAccess=all:
// the kernel stamps each datagram with its sender's pid (SO_PASSCRED), and
// a datagram is accepted only from the service's process or a process
// whose ancestry leads to it. Others are dropped, and so is the address's
// guessability: it ends in random bytes.
//
// Datagrams never queue up in tend: the reader keeps the latest READY,
// STATUS and MAINPID and wakes the supervisor once until it has read them,
// so a chatty service costs one inbox entry, not one per datagram.
type notifySocket struct {
	conn *net.UnixConn
	addr string
	main atomic.Int64 // the service's current process, 0 when none

	mu      sync.Mutex
	latest  map[string]string
	pending bool
	dropped int // datagrams from other processes since the last report
}

// notifyFields are the assignments tend acts on; the rest are ignored.
var notifyFields = []string{"READY", "STATUS", "MAINPID"}

func openNotify(service string) (*notifySocket, error) {
	// getrandom(2) rather than crypto/rand, which would link (and
	// initialise at every start-up, wrapper mode's included) the whole
	// FIPS crypto module for eight bytes. The name only has to be hard
	// to guess; GRND_NONBLOCK never waits for the entropy pool at boot.
	var nonce [8]byte
	_, _ = unix.Getrandom(nonce[:], unix.GRND_NONBLOCK)
	addr := fmt.Sprintf("@tend/%d/%s/%s", os.Getpid(), service, hex.EncodeToString(nonce[:]))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	raw, err := conn.SyscallConn()
	if err == nil {
		ctlErr := raw.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		})
		if ctlErr != nil {
			err = ctlErr
		}
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot ask for sender credentials: %w", err)
	}
	return &notifySocket{conn: conn, addr: addr, latest: map[string]string{}}, nil
}

func (n *notifySocket) setMain(pid int) { n.main.Store(int64(pid)) }

// serve reads datagrams until the socket is closed; wake tells the
// supervisor that svc's socket has news.
func (n *notifySocket) serve(svc *service, wake func()) {
	guard.Go("notify socket of "+svc.name, func() {
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
		for {
			k, oobn, _, _, err := n.conn.ReadMsgUnix(buf, oob)
			if err != nil {
				if isClosed(err) {
					return
				}
				continue // a truncated or odd datagram: the next one may be fine
			}
			pid := senderPid(oob[:oobn])
			if !fromService(pid, int(n.main.Load())) {
				if n.drop() {
					wake()
				}
				continue
			}
			if n.take(parseNotify(buf[:k])) {
				wake()
			}
		}
	})
}

// take merges one datagram's fields and reports whether the supervisor
// must be woken.
func (n *notifySocket) take(fields map[string]string) (wake bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, k := range notifyFields {
		if v, ok := fields[k]; ok {
			n.latest[k] = v
		}
	}
	if len(n.latest) == 0 || n.pending {
		return false
	}
	n.pending = true
	return true
}

// drop counts a datagram from outside the service; the supervisor is woken
// (once until it reads) to report it.
func (n *notifySocket) drop() (wake bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.dropped++
	if n.pending {
		return false
	}
	n.pending = true
	return true
}

// read hands the supervisor what came since the last read.
func (n *notifySocket) read() (fields map[string]string, dropped int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fields, n.latest, n.pending = n.latest, map[string]string{}, false
	dropped, n.dropped = n.dropped, 0
	return fields, dropped
}

func (n *notifySocket) close() { n.conn.Close() }

// parseNotify reads "KEY=VALUE" lines; lines without "=" are ignored.
func parseNotify(b []byte) map[string]string {
	fields := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if key, value, ok := strings.Cut(line, "="); ok && key != "" {
			fields[key] = value
		}
	}
	return fields
}

func senderPid(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if cred, err := unix.ParseUnixCredentials(&m); err == nil {
			return int(cred.Pid)
		}
	}
	return 0
}

// fromService: pid is the service's process main, or descends from it.
// The walk up /proc is bounded; a process that left the tree by being
// re-parented (a double fork's grandchild) is still found through its
// process group or its session, both of which the service's process leads.
func fromService(pid, main int) bool {
	if pid <= 0 || main <= 0 {
		return false
	}
	for range 64 {
		if pid == main {
			return true
		}
		p, ok := tree.ReadProcess(pid)
		if !ok {
			return false
		}
		if p.Pgrp == main || p.Session == main {
			return true
		}
		if p.PPid <= 1 {
			return false
		}
		pid = p.PPid
	}
	return false
}

func isClosed(err error) bool { return errors.Is(err, net.ErrClosed) }

// ensureNotify opens the service's notify socket once; it lives as long as
// the service does.
func (s *Supervisor) ensureNotify(svc *service) error {
	if svc.notify != nil {
		return nil
	}
	n, err := openNotify(svc.name)
	if err != nil {
		return err
	}
	svc.notify = n
	n.serve(svc, func() { s.inbox.post(func() { s.onNotify(svc) }) })
	return nil
}

func (s *Supervisor) onNotify(svc *service) {
	if !s.current(svc) || svc.notify == nil {
		return
	}
	fields, dropped := svc.notify.read()
	log := svc.logger(s.log)
	if dropped > 0 {
		log.Warnf("ignored %d notify message(s) from processes outside the service", dropped)
	}
	if status, ok := fields["STATUS"]; ok && status != svc.notifyStatus {
		svc.notifyStatus = status
		log.Infof("status: %s", status)
	}
	if pid, ok := fields["MAINPID"]; ok {
		log.Infof("reports main process %s (tend keeps supervising process %d)", pid, svc.pid)
	}
	if fields["READY"] == "1" && svc.state == Running {
		s.becomeReady(svc, "READY=1 on the notify socket")
	}
}
