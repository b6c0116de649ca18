package signals

import (
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Queued is the set of signals that tend's goroutine threads keep blocked:
// the real-time signals the runtime hands to os/signal (35-64), except any
// that a rewrite makes urgent.
//
// Why: the kernel queues every real-time signal sent (up to
// RLIMIT_SIGPENDING, ~96,000 here), and a thread with a deliverable signal
// pending runs no user code until the queue is empty, because every return
// to user mode delivers the next one first. Dequeuing one from a long queue
// of mixed signals walks the queue (the kernel takes the lowest number
// first), so 100,000 queued signals take the kernel tens of seconds of CPU.
// Blocked on the threads that run goroutines, they are caught only by the
// threads that run none: the runtime's signal thread (ensureSigM, made for
// exactly this), sysmon and the template thread. The goroutines, the
// os/signal loop included, keep running, and an urgent signal (TERM) is
// caught by any thread at once.
func Queued(urgent []unix.Signal) []unix.Signal {
	skip := map[unix.Signal]bool{}
	for _, s := range urgent {
		skip[s] = true
	}
	var list []unix.Signal
	for s := unix.Signal(35); s <= Max; s++ {
		if !skip[s] {
			list = append(list, s)
		}
	}
	return list
}

// ThreadBlocked is what every thread that runs goroutines blocks: the
// queued signals (Queued), and SIGTTOU and SIGTTIN.
//
// Why those two: when tend writes to its terminal from a background
// process group (after stty tostop, or started with & from an interactive
// shell), the kernel sends SIGTTOU to tend's group and restarts the write.
// Forwarded, each one stopped the foreground child, and the write spun at
// 100 % CPU. The kernel sends neither to a thread that blocks it: the
// write goes through (a read would get EIO; tend never reads a terminal).
// So the kernel never makes one up for tend, and a SIGTTOU or SIGTTIN that
// arrives was sent with kill: the threads that run no goroutine take it
// and it is forwarded as before. (tini ignores both instead, which also
// drops the ones sent on purpose.) A forked child starts with neither
// blocked (WithDefaultDispositions).
func ThreadBlocked(urgent []unix.Signal) []unix.Signal {
	return append(Queued(urgent), unix.SIGTTOU, unix.SIGTTIN)
}

// SetOf is list as a kernel signal set.
func SetOf(list []unix.Signal) unix.Sigset_t {
	var set unix.Sigset_t
	for _, s := range list {
		if s > 0 && s <= Max {
			word, bit := setPos(s)
			set.Val[word] |= 1 << bit
		}
	}
	return set
}

// inSet reports whether s is in set.
func inSet(set *unix.Sigset_t, s unix.Signal) bool {
	if s <= 0 || s > Max {
		return false
	}
	word, bit := setPos(s)
	return set.Val[word]&(1<<bit) != 0
}

// setPos is where signal s sits in a unix.Sigset_t, whose words are 64
// bits on 64-bit machines and 32 on 32-bit ones (386, arm): the kernel's
// sigset is a bit string either way, signal 1 its lowest bit.
func setPos(s unix.Signal) (word int, bit uint) {
	w := uint(unsafe.Sizeof(unix.Sigset_t{}.Val[0]) * 8)
	n := uint(s) - 1
	return int(n / w), n % w
}

// blocked is the set the goroutine threads block, once set by BlockQueued.
var blocked atomic.Pointer[unix.Sigset_t]

// BlockQueued blocks set on the calling thread, which the caller has
// locked (runtime.LockOSThread), and records it so that a fork unblocks it
// for the child (WithDefaultDispositions).
func BlockQueued(set unix.Sigset_t) error {
	blocked.Store(&set)
	return unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil)
}

// unblockForFork empties the calling thread's mask for the length of a
// fork: the runtime gives a forked child the mask of the thread that forks
// (syscall.runtime_BeforeFork saves it, the child restores it), and
// children must start with an empty one. Empty, not less the set recorded
// by BlockQueued: the threads masked before tend's subscription
// (signals/early) block every real-time signal. It returns the function
// that restores the mask.
func unblockForFork() func() {
	if blocked.Load() == nil {
		return func() {}
	}
	runtime.LockOSThread()
	var empty, old unix.Sigset_t
	unix.PthreadSigmask(unix.SIG_SETMASK, &empty, &old)
	return func() {
		unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
		runtime.UnlockOSThread()
	}
}
