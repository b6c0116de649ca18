package signals

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Caught is the signals a Catcher takes in wrapper mode: every handled
// signal that can be forwarded, less the ones the runtime must see itself.
// SIGCHLD stays the reaper's and SIGPIPE stays absorbed (both through
// os/signal). The fault signals (SEGV, BUS, FPE, ILL, TRAP, SYS) are never
// blocked on a thread that runs Go code: a real fault with its signal
// blocked kills the process outright. SIGPROF is the runtime's. Nor the
// queued signals (Queued): every thread that runs goroutines blocks them,
// the main thread included, so that a flood of them is caught only by the
// threads that run none (docs/reliability.md), never by the one that
// forwards a TERM. Any of these sent with kill still reaches tend through
// os/signal and is forwarded.
func Caught(queued []unix.Signal) []unix.Signal {
	skip := SetOf(queued)
	var list []unix.Signal
	for _, s := range Handled() {
		switch sig := s.(unix.Signal); sig {
		case unix.SIGCHLD, unix.SIGPIPE, unix.SIGPROF,
			unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGSYS:
		default:
			if !inSet(&skip, sig) {
				list = append(list, sig)
			}
		}
	}
	return list
}

// A Catcher takes signals straight off the kernel's queue on the process's
// main thread, the way tini does (sigtimedwait), so that a signal reaches
// the code that forwards it with one thread wake-up: the kernel's. Through
// os/signal it takes three (the thread the kernel picks runs the runtime's
// handler, which wakes the thread asleep in os/signal's loop, which wakes
// the goroutine that forwards it).
//
// Why it loses nothing: the kernel gives a signal sent to the process to
// the thread group leader first whenever that thread does not block it
// (kernel/signal.c, complete_signal). So a signal that arrives while the
// main thread waits in sigtimedwait is taken by the wait, and one that
// arrives while it is busy forwarding is handled on it (or on another
// thread) by the runtime's handler, which hands it to os/signal, where
// tend is subscribed to every signal as before: the subscription is
// unchanged and stays the fallback. Only the order of two
// signals that take different paths can differ from the order they were
// sent in, as it can between any two different signals.
//
// Run must be called on the main thread, by a goroutine locked to it
// (runtime.LockOSThread in an init function keeps main there).
type Catcher struct {
	set     unix.Sigset_t
	wake    unix.Signal
	done    atomic.Bool
	waiting atomic.Bool
}

// NewCatcher returns a Catcher for the signals listed.
func NewCatcher(list []unix.Signal) *Catcher {
	c := &Catcher{set: SetOf(list)}
	for _, s := range list {
		c.wake = max(c.wake, s)
	}
	return c
}

// Run hands each caught signal to fwd until Stop is called. It returns at
// once, leaving everything to os/signal, when the calling thread is not
// the main thread (the kernel would not prefer it) or the set is empty,
// and it returns if the wait cannot be made. Stop's signal stays blocked
// on the thread after Stop: one still pending is one nobody needs.
func (c *Catcher) Run(fwd func(unix.Signal)) {
	if c.wake == 0 || unix.Gettid() != unix.Getpid() {
		return
	}
	if !c.blockWake() {
		return
	}
	// Stop stores done, then looks at waiting; this stores waiting, then
	// looks at done: one of the two sees the other, so either the wake-up
	// is sent or the loop below never waits.
	c.waiting.Store(true)
	for !c.done.Load() {
		// No timeout: asleep until a signal comes, never a polling loop.
		r, _, errno := unix.Syscall6(unix.SYS_RT_SIGTIMEDWAIT,
			uintptr(unsafe.Pointer(&c.set)), 0, 0, sigsetSize, 0, 0)
		switch errno {
		case 0:
			if !c.done.Load() {
				fwd(unix.Signal(r))
			}
		case unix.EINTR:
			// A handler ran on this thread (the runtime's preemption
			// signal); sigtimedwait is never restarted.
		default:
			return
		}
	}
}

// blockWake blocks Stop's signal on the calling thread, so that Stop's
// wake-up waits for the wait, never reaching the runtime's handler (which
// would forward it). Only that one: had the thread blocked the whole set
// between two waits, the kernel would wake another thread at the end of
// every wait (kernel/signal.c, retarget_shared_pending: the signal just
// taken is still pending, and now blocked here), sysmon as a rule, which
// then took the CPU from the forwarding thread. Unblocked, a signal that
// comes while this thread is not waiting is handled on it by the runtime
// and reaches os/signal, like one taken by any other thread.
func (c *Catcher) blockWake() bool {
	wake := SetOf([]unix.Signal{c.wake})
	return unix.PthreadSigmask(unix.SIG_BLOCK, &wake, nil) == nil
}

// sigsetSize is the kernel's sigset_t: 64 signals.
const sigsetSize = 8

// Stop makes Run return, from any goroutine: it wakes the main thread
// with a caught signal of its own, thread-directed, so it waits on that
// thread (which blocks it) until taken.
func (c *Catcher) Stop() {
	if c.done.Swap(true) || !c.waiting.Load() {
		return
	}
	pid := unix.Getpid()
	_ = unix.Tgkill(pid, pid, c.wake)
}
