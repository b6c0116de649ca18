// Package spawner starts tend's children from a small helper process that
// holds almost no descriptors (issue 18). Every fork copies the forking
// process's descriptor table and every exec walks it to close the
// close-on-exec descriptors, so a fork in tend, which holds two pipe ends
// per service with output = "prefix", costs more with every service
// running. The spawner is tend itself, re-executed once from
// /proc/self/exe with Magic, in a session of its own, killed by the kernel
// when tend dies (PR_SET_PDEATHSIG SIGKILL). For each start tend sends the
// request over a unix socket pair with the child's descriptors (and its
// cgroup's) as SCM_RIGHTS; the spawner forks with CLONE_PARENT, so the
// child is tend's child and only tend's reaper waits for it, and answers
// with the pid or the errno.
//
// tend sends under the reaper's lock (reaper.Start) and keeps it until the
// pid is registered, so an exit before registration is never lost. A
// spawner that does not answer within Timeout, or is gone, is noticed and
// logged once; tend then forks in-process, as it did before the spawner.
package spawner

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/reaper"
)

// Timeout bounds a request's round trip: a spawner that does not answer
// in time is killed and given up.
const Timeout = 2 * time.Second

// Self is the program the spawner runs: tend's own binary.
const Self = "/proc/self/exe"

// Client is tend's end of the spawner.
type Client struct {
	r    *reaper.Reaper
	warn func(string)

	mu   sync.Mutex // one request at a time
	fd   int        // tend's end of the socket; -1 once given up
	pid  int
	dead atomic.Bool   // the spawner exited (set by its exit callback)
	gone chan struct{} // closed when the spawner's exit was reaped

	spawned atomic.Uint64 // children started through the spawner
}

// Start starts the spawner as a child of r (its exit is r's to collect,
// and never counted as an orphan) and installs it as r's spawner. warn is
// called once, when the spawner is given up.
func Start(r *reaper.Reaper, warn func(string)) (*Client, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	mine, theirs := pair[0], pair[1]
	// Room for one whole request; a larger one is started in-process.
	for _, fd := range pair {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, maxRequest+4096) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, maxRequest+4096)
		}
	}
	tv := unix.NsecToTimeval(Timeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(mine, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(mine)
		unix.Close(theirs)
		return nil, err
	}
	if err := unix.SetsockoptTimeval(mine, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(mine)
		unix.Close(theirs)
		return nil, err
	}
	devnull, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(mine)
		unix.Close(theirs)
		return nil, err
	}
	c := &Client{r: r, warn: warn, fd: mine, gone: make(chan struct{})}
	pid, err := r.Start(reaper.Cmd{
		Args:  []string{Self, Magic},
		Env:   []string{"GOMAXPROCS=1"},
		Dir:   "/",
		Files: []uintptr{uintptr(devnull), uintptr(devnull), 2, uintptr(theirs)},
		// Its own session: no terminal signal of tend's reaches it. It
		// dies with tend.
		Sys: &syscall.SysProcAttr{Setsid: true, Pdeathsig: unix.SIGKILL},
	}, func(reaper.Exit) {
		c.dead.Store(true)
		close(c.gone)
	})
	unix.Close(devnull)
	unix.Close(theirs)
	if err != nil {
		unix.Close(mine)
		return nil, err
	}
	c.pid = pid
	r.SetSpawner(c)
	return c, nil
}

// Pid is the spawner's process.
func (c *Client) Pid() int { return c.pid }

// supported reports whether the spawner can start a child with sys: the
// fields tend sets for services and checks. Anything else (a controlling
// terminal, namespaces, ...) is started in-process.
func supported(sys *syscall.SysProcAttr) bool {
	if sys == nil {
		return true
	}
	rest := *sys
	rest.Setsid, rest.Setpgid, rest.Pgid = false, false, 0
	rest.Credential = nil
	rest.UseCgroupFD, rest.CgroupFD = false, 0
	return reflect.DeepEqual(rest, syscall.SysProcAttr{})
}

// Spawn implements reaper.Spawner: it is called with the reaper's lock
// held. ok false: the spawner did not start the child and never will; the
// caller forks in-process. ok true: err is the child's start error (the
// exec's errno), or pid is the child's.
func (c *Client) Spawn(path string, cmd reaper.Cmd) (pid int, err error, ok bool) {
	// CLONE_INTO_CGROUP needs clone3, and clone3 refuses CLONE_PARENT
	// with an exit signal (EINVAL), which Go's ForkExec always sets: in
	// cgroup mode services are forked in-process, as before.
	if !supported(cmd.Sys) || cmd.Sys != nil && cmd.Sys.UseCgroupFD || len(cmd.Files) > maxRights-1 {
		return 0, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fd < 0 {
		return 0, nil, false
	}
	if c.dead.Load() {
		c.giveUpLocked("the spawner exited")
		return 0, nil, false
	}
	q := &request{path: path, dir: cmd.Dir, argv: cmd.Args, env: cmd.Env, cgroup: none}
	var rights []int
	for _, f := range cmd.Files {
		if int(f) < 0 {
			q.slots = append(q.slots, none)
			continue
		}
		q.slots = append(q.slots, uint32(len(rights)))
		rights = append(rights, int(f))
	}
	if s := cmd.Sys; s != nil {
		q.setsid, q.setpgid, q.pgid, q.cred = s.Setsid, s.Setpgid, s.Pgid, s.Credential
		if s.UseCgroupFD {
			q.cgroup = uint32(len(rights))
			rights = append(rights, s.CgroupFD)
		}
	}
	msg := q.encode()
	if len(msg) > maxRequest {
		return 0, nil, false
	}
	var oob []byte
	if len(rights) > 0 {
		oob = unix.UnixRights(rights...)
	}
	deadline := time.Now().Add(Timeout)
	for {
		err = unix.Sendmsg(c.fd, msg, oob, nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR && time.Now().Before(deadline) {
			continue
		}
		break
	}
	if err == unix.EMSGSIZE || err == unix.ENOBUFS {
		return 0, nil, false // this one is too large; the spawner stays
	}
	if err != nil {
		c.giveUpLocked(fmt.Sprintf("cannot send it a request: %v", err))
		return 0, nil, false
	}
	status, pid, errno, err := c.readReply(deadline)
	if err != nil {
		// Killed, the socket tells what it did: a reply it sent before
		// it died, or nothing (EOF).
		c.killLocked()
		if s, p, e, err2 := c.readReply(time.Now().Add(Timeout)); err2 == nil {
			status, pid, errno, err = s, p, e, nil
		}
		c.giveUpLocked(fmt.Sprintf("no answer from it: %v", err))
		if err != nil {
			return 0, nil, false
		}
	}
	switch status {
	case replyStarted:
		c.spawned.Add(1)
		return pid, nil, true
	case replyFailed:
		return 0, errno, true
	default:
		return 0, nil, false
	}
}

var errEOF = errors.New("the spawner closed its end")

func (c *Client) readReply(deadline time.Time) (status uint32, pid int, errno syscall.Errno, err error) {
	var buf [16]byte
	for {
		n, _, _, _, err := unix.Recvmsg(c.fd, buf[:], nil, 0)
		if err == unix.EINTR && time.Now().Before(deadline) {
			continue
		}
		if err == unix.EAGAIN {
			return 0, 0, 0, fmt.Errorf("no answer in %s", Timeout)
		}
		if err != nil {
			return 0, 0, 0, err
		}
		if n == 0 {
			return 0, 0, 0, errEOF
		}
		return decodeReply(buf[:n])
	}
}

// killLocked ends the spawner; its exit is the reaper's to collect.
func (c *Client) killLocked() {
	if c.pid > 0 && !c.dead.Load() {
		// Not through the reaper, whose lock the caller of Spawn holds:
		// the spawner cannot have been reaped meanwhile, for the same
		// reason, so the pid is still the spawner's.
		_ = unix.Kill(c.pid, unix.SIGKILL)
	}
}

func (c *Client) giveUpLocked(why string) {
	if c.fd < 0 {
		return
	}
	unix.Close(c.fd)
	c.fd = -1
	c.killLocked()
	if c.warn != nil {
		c.warn("the spawner is given up (" + why + "): services are started by forking tend from now on")
	}
}

// Stop ends the spawner at shutdown, before the sweep of leftovers, and
// waits (at most Timeout) until its exit is reaped, so the sweep does not
// find it. Starts after Stop fork in-process.
func (c *Client) Stop() {
	c.mu.Lock()
	if c.fd >= 0 {
		unix.Close(c.fd) // the spawner reads EOF and exits
		c.fd = -1
	}
	c.mu.Unlock()
	select {
	case <-c.gone:
		return
	case <-time.After(Timeout / 4):
	}
	// Through the reaper: it may have been reaped meanwhile.
	_ = c.r.Signal(c.pid, unix.SIGKILL, false)
	select {
	case <-c.gone:
	case <-time.After(Timeout):
	}
}
