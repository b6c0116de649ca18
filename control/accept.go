package control

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// After a failed accept (out of fds, ...) the next try waits, as net/http
// does: 5 ms, doubling up to 1 s, so that a shortage neither spins the
// loop nor ends it.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// acceptLogEvery: a burst of failed accepts that begins within this long
// of the last one logged is only counted, so that a shortage that comes
// and goes (out of fds, an idle client's fd freed, out again) logs two
// lines a minute, not two per connection.
const acceptLogEvery = time.Minute

// acceptLoop is the accept loop of every listener tend has: the control
// socket's and the TCP listeners' (health_listen, metrics_listen). It
// hands each connection to take until ctx ends, the listener is closed or
// take returns false. A failed accept is tried again after a backoff, and
// logged under name ("control socket /run/tend.sock"). evict, when not
// nil, is asked to free an fd when an accept fails for want of one.
func acceptLoop[C any](ctx context.Context, name string, log *logrus.Logger, accept func() (C, error), evict func() bool, take func(C) bool) {
	var (
		backoff  time.Duration
		failed   int  // in this burst
		unlogged int  // in earlier bursts that were not logged
		logged   bool // this burst's start was logged
		lastLog  time.Time
	)
	for {
		conn, err := accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			if failed++; failed == 1 && time.Since(lastLog) >= acceptLogEvery {
				log.Errorf("%s: %v; retrying with a backoff up to %s", name, err, acceptBackoffMax)
				logged, lastLog = true, time.Now()
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			// Out of fds: an idle or slow client holds one that an
			// operator's connection needs more.
			if (errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE)) && evict != nil && evict() {
				backoff = acceptBackoffMin
			}
			wait := time.NewTimer(backoff)
			select {
			case <-wait.C:
			case <-ctx.Done():
				wait.Stop()
				return
			}
			continue
		}
		if failed > 0 {
			if logged {
				log.Warnf("%s: accepting again after %d failed accepts", name, failed+unlogged)
				unlogged = 0
			} else {
				unlogged += failed
			}
			failed, backoff, logged = 0, 0, false
		}
		if !take(conn) {
			return
		}
	}
}
