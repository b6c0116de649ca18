package pid1

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/signals"
)

// tuneRuntime keeps the runtime quiet while nothing happens, and makes the
// threads tend will ever need, in code rather than through GODEBUG/GOGC
// variables, which children would inherit. (The //go:debug lines in
// main.go stop the once-a-second GOMAXPROCS refresh.)
//
// subscribe is called as early as the masks allow (see reserveThreads):
// until it has run, a SIGTERM or SIGHUP sent with kill ends tend.
func tuneRuntime(wrapper bool, blocked []unix.Signal, subscribe func()) {
	floor := int64(16 << 20)
	if !wrapper {
		floor = 24 << 20
	}
	reserveThreads(blocked, wrapper, subscribe)
	followLiveHeap(floor)
	// The runtime opens the network poller (epoll and an eventfd) the first
	// time a timer is set, and a poller it cannot open is a fatal error. A
	// timer now takes the two descriptors while there are some to take; a
	// first timer set when a service has used them all would end tend.
	time.AfterFunc(time.Hour, func() {}).Stop()
}

// followLiveHeap replaces GOGC's proportional trigger with a memory limit of
// twice the live heap (and at least floor), set again after every
// collection. GOGC itself is off because the runtime forces a collection
// every two minutes while it is on, waking an idle tend; a fixed limit
// instead would let garbage pile up to it. The limit is moved by a
// finalizer that re-arms itself each cycle: it runs after a collection,
// never on a timer.
func followLiveHeap(floor int64) {
	liveHeap[0].Name = "/gc/heap/live:bytes"
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(floor)
	var arm func()
	arm = func() {
		// 32 bytes keeps it out of the tiny allocator, whose blocks are
		// shared and may never be freed.
		runtime.SetFinalizer(new([32]byte), func(*[32]byte) {
			defer guard.Recover("memory limit")
			// The heap the collection found live. Not the heap in use
			// when this runs (MemStats.HeapAlloc), which adds what was
			// allocated since: under a fast churn of control
			// connections that ratcheted the limit up cycle after cycle
			// (VmHWM 5 → 110 MB in 3 s of 2,000 reconnecting clients).
			// runtime/metrics costs every start-up ~0.1 ms of package
			// initialisation (inittrace: 0.08-0.12 ms); a limit that
			// holds is worth it.
			metrics.Read(liveHeap[:])
			live := int64(liveHeap[0].Value.Uint64())
			debug.SetMemoryLimit(max(floor, 2*live+4<<20))
			arm()
		})
	}
	arm()
}

// liveHeap is read by the finalizer only, one collection at a time.
var liveHeap [1]metrics.Sample

// maxProcs caps GOMAXPROCS: each P may need a thread of its own, and an
// init needs few.
const maxProcs = 4

// spareThreads is how many threads beyond GOMAXPROCS tend makes at start:
// enough for every thread that can be in a blocking system call at once
// (docs/reliability.md, "Threads": the os/signal loop, the log writer, a
// write of service output, a fork, a file read, the network poller), with
// room to spare.
const spareThreads = 12

// Wrapper mode runs one program and no services, so fewer threads can be
// busy at once. Counted as for spareThreads (docs/reliability.md,
// "Threads"): the Ps' threads 2; the os/signal loop and the runtime's
// signal thread 2; the poller's wait 1; goroutines that can be in a
// blocking system call at once: the log writer, the wrapper loop (a kill,
// the /proc scan at exit), the reaper's wait4, and in a VM the console
// drain: 4. That is 9; 2 + 9 are made. The main thread, which catches
// signals in wrapper mode (signals.Catcher), is locked to main and is not
// one of them. Two Ps, not one: the catcher takes a P each time it wakes,
// and with one P a flood it forwards starves the goroutines that carry
// the signals arriving through os/signal (a TERM among them).
const (
	wrapperProcs        = 2
	wrapperSpareThreads = 9
)

// reserveThreads makes, at start-up, every OS thread tend will need, so
// that it never has to create one once it runs: the runtime keeps idle
// threads for good and makes a new one only when none is idle, and a
// thread it cannot make (EAGAIN in a pids cgroup that a service has
// filled) is a fatal error, not an error. Goroutines locked to their
// threads make the runtime create that many; unlocked, the threads stay in
// its pool.
//
// Each of them also blocks the queued signals and the terminal's stop
// signals (signals.ThreadBlocked), which then reach only the threads that
// run no goroutine: sysmon, the template thread and the runtime's signal
// thread, started by the first signal.Notify.
//
// For the length of it GOMAXPROCS is 1: with a second P idle, waking the
// locked goroutines would have the runtime start a spinning thread of its
// own when every thread is taken, one the mask never reaches. With one P,
// every thread made here is made for, and blocked by, a locked goroutine,
// and every thread made before (at most a few, idle) is reused by one.
//
// The tend binary has subscribed already, in signals/early's init, after
// masking a first few threads the same way (see that package). Without it
// (a build that does not link signals/early), the subscription comes
// between two rounds: its first signal.Notify starts os/signal's loop,
// whose goroutine then sleeps for good in a system call on whatever thread
// runs it, so that thread must already block the queued signals. A first
// round of earlyThreads leaves that many masked threads idle for it; with
// none, a flood of real-time signals held a SIGTERM up for tens of seconds
// (docs/reliability.md, "The first milliseconds"). The second round makes
// the rest.
func reserveThreads(blocked []unix.Signal, wrapper bool, subscribe func()) {
	procs := runtime.GOMAXPROCS(1)
	if early.MaxProcs > 0 {
		procs = early.MaxProcs // the early subscription set 1 already
	}
	procs = min(procs, maxProcs)
	spare := spareThreads
	if wrapper {
		procs, spare = wrapperProcs, wrapperSpareThreads
	}
	defer runtime.GOMAXPROCS(procs)
	set := signals.SetOf(blocked)
	if early.Signals.Acted == nil {
		lockThreads(set, earlyThreads)
	}
	subscribe()
	lockThreads(set, procs+spare)
}

// earlyThreads is the first round of reserveThreads: the os/signal loop's
// thread, the runtime's signal thread and the main goroutine's, with one
// to spare.
const earlyThreads = 4

// lockThreads has n goroutines lock a thread each at the same time, block
// set on it, and let go: the runtime must make that many threads, or reuse
// idle ones, and they stay in its pool with set blocked.
func lockThreads(set unix.Sigset_t, n int) {
	var arrived atomic.Int32
	var exited sync.WaitGroup
	release := make(chan struct{})
	exited.Add(n)
	for range n {
		guard.Go("thread reserve", func() {
			defer exited.Done()
			runtime.LockOSThread()
			_ = signals.BlockQueued(set)
			// The last to arrive releases the others: nobody else needs
			// to be woken while every thread is held.
			if arrived.Add(1) == int32(n) {
				close(release)
			}
			<-release
			// Unlocked before it returns: a goroutine that ends locked
			// takes its thread with it.
			runtime.UnlockOSThread()
		})
	}
	exited.Wait()
}

// ensureEmptySigmask re-executes tend once with an empty signal mask when it
// inherited blocked signals. The runtime restores the inherited mask in every
// forked child, so without this the children would start with signals
// blocked. It is a no-op in the usual case.
func ensureEmptySigmask() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var blocked unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, nil, &blocked); err != nil {
		return
	}
	if blocked == (unix.Sigset_t{}) {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return // no /proc yet (a VM's init); the kernel starts init with an empty mask
	}
	var empty unix.Sigset_t
	if unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil) != nil {
		return
	}
	_ = unix.Exec(exe, os.Args, os.Environ())
}
