// Package reaper owns wait4: it is the only code in tend that collects exit
// statuses. Children are started through Start, which forks and registers the
// child under the same lock the reap pass takes, so an exit that happens
// before Start returns is still delivered to the child's owner. Every exit
// that belongs to no one (an adopted orphan) is reaped too.
package reaper

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/signals"
)

// Exit is how a child ended.
type Exit struct {
	Pid    int
	Status unix.WaitStatus
	At     time.Time
}

// Code is the shell's view of the status: the exit code, or 128+N when the
// process was killed by signal N.
func (e Exit) Code() int {
	if e.Status.Signaled() {
		return 128 + int(e.Status.Signal())
	}
	return e.Status.ExitStatus()
}

// ExitRemap is -e: exit codes of the main program that tend reports as 0.
type ExitRemap map[int]bool

// Apply returns the status tend reports for code.
func (m ExitRemap) Apply(code int) int {
	if m[code] {
		return 0
	}
	return code
}

// Signaled reports whether the process was killed by a signal.
func (e Exit) Signaled() bool { return e.Status.Signaled() }

func (e Exit) String() string {
	if e.Status.Signaled() {
		return "killed by " + signals.Name(e.Status.Signal())
	}
	return fmt.Sprintf("exit code %d", e.Status.ExitStatus())
}

// Cmd describes a child to start.
type Cmd struct {
	Args  []string // Args[0] is looked up in PATH unless it contains a slash
	Env   []string
	Dir   string
	Files []uintptr // descriptors 0, 1, 2, ... of the child
	Sys   *syscall.SysProcAttr
}

// Reaper collects exit statuses and hands each to its owner.
type Reaper struct {
	mu       sync.Mutex
	owners   map[int]func(Exit) // called once, outside the lock, from the reap pass
	waiters  []chan struct{}    // closed on the next pass that finds no child at all
	kick     chan struct{}
	onOrphan []func(Exit)
	now      func() time.Time
	orphans  uint64 // reaped, not started through Start; under mu
	spawner  Spawner
	strays   int // children of the spawner that failed their exec, not reaped yet; under mu
}

// A Spawner forks and execs for the reaper in another process, which makes
// the child tend's (CLONE_PARENT): spawner.Client. Spawn is called with the
// reaper's lock held. ok false: it did not start the child, and the
// reaper forks it itself. ok true: pid is the child's, or err why the
// child could not run (the exec's errno).
type Spawner interface {
	Spawn(path string, c Cmd) (pid int, err error, ok bool)
}

// SetSpawner makes Start go through s (nil: fork in-process).
func (r *Reaper) SetSpawner(s Spawner) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spawner = s
}

// maxStrays bounds the exits taken for failed execs: a fork that failed
// left no child, and must not hide an orphan's exit for long.
const maxStrays = 16

// strayStatus is how Go's forked child exits when its exec fails.
const strayStatus = 253

// Orphans is how many processes were reaped that no one started through
// Start (adopted orphans), for the metrics.
func (r *Reaper) Orphans() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// New returns a reaper. onOrphan, if not nil, is called (outside any lock)
// for each reaped process that was not started through Start.
func New(onOrphan func(Exit)) *Reaper {
	r := &Reaper{
		owners: make(map[int]func(Exit)),
		kick:   make(chan struct{}, 1),
		now:    time.Now,
	}
	if onOrphan != nil {
		r.onOrphan = append(r.onOrphan, onOrphan)
	}
	return r
}

// WatchOrphans adds fn to what is called (outside any lock, on the reaper's
// goroutine) for each reaped process that was not started through Start.
// The process tracker uses it: once a service's main process is gone, its
// other processes end as tend's children, so an orphan's exit is when to
// look whether any of them is left.
func (r *Reaper) WatchOrphans(fn func(Exit)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onOrphan = append(r.onOrphan, fn)
}

// Run reaps on every SIGCHLD until stop is closed. It must run in exactly
// one goroutine.
func (r *Reaper) Run(sigchld <-chan os.Signal, stop <-chan struct{}) {
	for {
		select {
		case <-sigchld:
		case <-r.kick:
		case <-stop:
			return
		}
		r.Reap()
	}
}

// Reap collects every child that has exited and dispatches the statuses. It
// reports whether no child at all is left. The whole pass runs under the lock
// so that Start cannot fork between a wait4 and the owner lookup, and Signal
// cannot reach a PID that was reaped and reused.
func (r *Reaper) Reap() (noChildren bool) {
	var orphans []Exit
	type delivery struct {
		fn func(Exit)
		e  Exit
	}
	var owned []delivery
	r.mu.Lock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ECHILD {
			noChildren = true
			break
		}
		if err != nil || pid <= 0 {
			break
		}
		e := Exit{Pid: pid, Status: ws, At: r.now()}
		if fn, ok := r.owners[pid]; ok {
			delete(r.owners, pid)
			owned = append(owned, delivery{fn, e})
		} else if r.strays > 0 && ws.Exited() && ws.ExitStatus() == strayStatus {
			// A child of the spawner that failed its exec: Start has
			// reported the error already.
			r.strays--
		} else {
			r.orphans++
			if len(r.onOrphan) > 0 {
				orphans = append(orphans, e)
			}
		}
	}
	var waiters []chan struct{}
	if noChildren {
		waiters, r.waiters = r.waiters, nil
	}
	hooks := r.onOrphan
	r.mu.Unlock()
	// Owners first: a service's main process before the orphans of the
	// same pass, so the tracker knows the run is draining when it looks.
	for _, d := range owned {
		d.fn(d.e)
	}
	for _, w := range waiters {
		close(w)
	}
	for _, e := range orphans {
		for _, fn := range hooks {
			fn(e)
		}
	}
	return noChildren
}

// NoChildren returns a channel that is closed once a reap pass finds that
// tend has no child left, living or zombie. It asks for a pass at once.
func (r *Reaper) NoChildren() <-chan struct{} {
	w := make(chan struct{})
	r.mu.Lock()
	r.waiters = append(r.waiters, w)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default: // a pass is already pending
	}
	return w
}

// Start forks and execs c and registers the child before any reap pass can
// see it: onExit is called exactly once with the child's exit, on the
// reaper's goroutine and outside its lock, possibly before Start has
// returned. It must not block: the next reap pass waits for it.
func (r *Reaper) Start(c Cmd, onExit func(Exit)) (pid int, err error) {
	if len(c.Args) == 0 {
		return 0, &StartError{Code: CodeNotFound, Err: errors.New("empty command")}
	}
	path, err := LookPath(c.Args[0], c.Env)
	if err != nil {
		return 0, err
	}
	attr := &syscall.ProcAttr{Dir: c.Dir, Env: c.Env, Files: c.Files, Sys: c.Sys}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spawner != nil {
		if pid, err, ok := r.spawner.Spawn(path, c); ok {
			if err != nil {
				// The child may be left as tend's zombie (exit 253): the
				// spawner's ForkExec could not wait for it.
				r.strays = min(r.strays+1, maxStrays)
				return 0, startError(c.Args[0], path, err)
			}
			r.owners[pid] = onExit
			return pid, nil
		}
	}
	// When exec fails, ForkExec collects the failed child itself with a
	// wait4 on that one PID; the child never ran, so no owner misses it.
	signals.WithDefaultDispositions(func() {
		pid, err = syscall.ForkExec(path, c.Args, attr)
	})
	if err != nil {
		return 0, startError(c.Args[0], path, err)
	}
	r.owners[pid] = onExit
	return pid, nil
}

// Owns reports whether pid is a child started through Start
// and not reaped yet (an adopted orphan is not).
func (r *Reaper) Owns(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.owners[pid]
	return ok
}

// PidFD opens a pidfd (pidfd_open(2)) for pid, a child started through
// Start and not reaped yet: a descriptor that names that process and never
// a later one given the same PID, so whoever holds it can signal the
// process without the reaper's lock (signals.Catcher.RunDirect). It fails
// unless pidfd_send_signal works too: a seccomp profile (an old Docker's,
// for one) may allow neither, or only pidfd_open, and a caller must then
// signal through Signal.
func (r *Reaper) PidFD(pid int) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, live := r.owners[pid]; !live {
		return -1, unix.ESRCH
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, err
	}
	// Signal 0 checks the call and the permission, and sends nothing.
	if err := unix.PidfdSendSignal(fd, 0, nil, 0); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Signal sends sig to pid, or to its process group when group is set, if pid
// is a child started through Start that has not been reaped yet. A group is
// still signalled after its leader was reaped: the kernel does not reuse a
// PID while a process group of that number exists.
func (r *Reaper) Signal(pid int, sig unix.Signal, group bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, live := r.owners[pid]; !live && !group {
		return unix.ESRCH
	}
	if group {
		return unix.Kill(-pid, sig)
	}
	return unix.Kill(pid, sig)
}
