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
			if skip.Val[(sig-1)/64]&(1<<((uint(sig)-1)%64)) == 0 {
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
// (kernel/signal.c, complete_signal). The main thread blocks the caught
// set except while it waits in sigtimedwait, which unblocks the set for
// the length of the wait. So a signal that arrives while the main thread
// waits is taken by the wait, and one that arrives while it is busy
// forwarding goes to another thread, whose runtime handler hands it to
// os/signal, where tend is subscribed to every signal as before: the
// subscription is unchanged and stays the fallback. Only the order of two
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

// Run blocks the set on the calling thread and hands each caught signal to
// fwd until Stop is called. It returns at once, leaving everything to
// os/signal, when the calling thread is not the main thread (the kernel
// would not prefer it) or the set is empty; and it unblocks the set and
// returns if the wait cannot be made. The set stays blocked after Stop: a
// signal still pending on the main thread is one nobody needs any more.
func (c *Catcher) Run(fwd func(unix.Signal)) {
	if c.wake == 0 || unix.Gettid() != unix.Getpid() {
		return
	}
	if unix.PthreadSigmask(unix.SIG_BLOCK, &c.set, nil) != nil {
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
			_ = unix.PthreadSigmask(unix.SIG_UNBLOCK, &c.set, nil)
			return
		}
	}
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
