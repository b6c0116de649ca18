package pid1

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
)

// tuneRuntime keeps the runtime quiet while nothing happens, in code rather
// than through GODEBUG/GOGC variables, which children would inherit. (The
// //go:debug lines in main.go stop the once-a-second GOMAXPROCS refresh; an
// explicit runtime.GOMAXPROCS call would do it too, but it stops the world
// and measurably slows start-up.)
func tuneRuntime(wrapper bool) {
	floor := int64(16 << 20)
	if !wrapper {
		floor = 24 << 20
	}
	followLiveHeap(floor)
}

// followLiveHeap replaces GOGC's proportional trigger with a memory limit of
// twice the live heap (and at least floor), set again after every
// collection. GOGC itself is off because the runtime forces a collection
// every two minutes while it is on, waking an idle tend; a fixed limit
// instead would let garbage pile up to it. The limit is moved by a
// finalizer that re-arms itself each cycle: it runs after a collection,
// never on a timer.
func followLiveHeap(floor int64) {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(floor)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var arm func()
	arm = func() {
		// 32 bytes keeps it out of the tiny allocator, whose blocks are
		// shared and may never be freed.
		runtime.SetFinalizer(new([32]byte), func(*[32]byte) {
			defer guard.Recover("memory limit")
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				live := int64(sample[0].Value.Uint64())
				debug.SetMemoryLimit(max(floor, 2*live+4<<20))
			}
			arm()
		})
	}
	arm()
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
