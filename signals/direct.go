package signals

import (
	"syscall"
	"unsafe" // also what go:linkname needs

	"golang.org/x/sys/unix"
)

// A Forwarding is wrapper mode's whole forwarding decision, made once before
// the catcher starts, for RunDirect: which signal each caught one becomes
// (0: absorbed), and where it goes.
type Forwarding struct {
	To    [128]uint8 // indexed by the signal received; 128 so no index is out of range
	PidFD int        // the main program, for pidfd_send_signal
	Group int        // when not 0, the process group to kill(2) instead (-g)
}

// ForwardingFor fills in To for the caught signals, as Route decides each.
func ForwardingFor(mode Mode, rw Rewrite, caught []unix.Signal) Forwarding {
	var r Forwarding
	for _, s := range caught {
		if action, to := Route(mode, rw, s); action == Forward && s > 0 && s <= Max {
			r.To[s] = uint8(to)
		}
	}
	return r
}

// RunDirect is Run with the forwarding done in the loop itself, without
// ever returning to the Go scheduler between the kernel's wake-up and the
// kill: tini's loop, in Go.
//
// Why it is worth a linkname: Run goes through a normal system call, so
// every signal taken ends it (exitsyscall), and after the 10 ms that an
// idle tend spends in the wait the runtime has taken its P back and put
// sysmon in deep sleep; getting a P again wakes sysmon, which then sends
// the main thread a preemption signal and polls every 20 µs for a while.
// All of that came before the kill: SIGUSR1 took 34 µs to reach the child
// on one CPU against tini's 28 µs (2026-11-29). Here the main thread enters
// the system-call state once (runtime.entersyscall, the call syscall.Syscall
// makes, exported for this use) and stays in it: the loop between the two
// system calls is nosplit, touches no heap and no pointer, so the scheduler
// and the collector treat the main goroutine as one in a long system call,
// which it is.
//
// The loop ends when Stop wakes it (a signal tend sent itself with tgkill,
// which no other process can forge) or when the wait fails.
func (c *Catcher) RunDirect(r *Forwarding) {
	if c.wake == 0 || unix.Gettid() != unix.Getpid() {
		return
	}
	if !c.blockWake() {
		return
	}
	c.waiting.Store(true)
	if c.done.Load() {
		return // Stop came first; the wake-up it sent is never needed
	}
	forwardLoop(&c.set, r, uintptr(unix.Getpid()))
}

//go:linkname entersyscall runtime.entersyscall
func entersyscall()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// siginfo is the start of the kernel's siginfo_t, as much as the loop
// reads: the signal, its code, and the sender for SI_USER and SI_TKILL.
type siginfo struct {
	signo, errno, code int32
	_                  int32
	pid                int32
	uid                uint32
	_                  [112]byte
}

// siTkill is si_code for tgkill(2); the kernel refuses it from any other
// process (rt_tgsigqueueinfo), so with tend's own PID it is Stop's.
const siTkill = -6

// forwardLoop must stay nosplit, call nothing that is not, and write no
// pointer: from entersyscall to exitsyscall the stack cannot grow and the
// goroutine may have no P. It only reads r, which the caller keeps alive.
//
//go:nosplit
//go:norace
func forwardLoop(set *unix.Sigset_t, r *Forwarding, self uintptr) {
	var info siginfo
	entersyscall()
	for {
		sig, _, errno := syscall.RawSyscall6(unix.SYS_RT_SIGTIMEDWAIT,
			uintptr(unsafe.Pointer(set)), uintptr(unsafe.Pointer(&info)), 0, sigsetSize, 0, 0)
		if errno == syscall.EINTR {
			continue // a runtime signal ran its handler on this thread
		}
		if errno != 0 || (info.code == siTkill && uintptr(info.pid) == self) {
			break
		}
		to := uintptr(r.To[sig&127])
		switch {
		case to == 0:
		case r.Group != 0:
			syscall.RawSyscall(unix.SYS_KILL, uintptr(-r.Group), to, 0)
		default:
			syscall.RawSyscall6(unix.SYS_PIDFD_SEND_SIGNAL, uintptr(r.PidFD), to, 0, 0, 0, 0)
		}
	}
	exitsyscall()
}
