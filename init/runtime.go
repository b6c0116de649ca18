package pid1

import (
	"os"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// tuneRuntime keeps the runtime quiet while nothing happens, in code rather
// than through GODEBUG/GOGC variables, which children would inherit. (The
// //go:debug lines in main.go stop the once-a-second GOMAXPROCS refresh; an
// explicit runtime.GOMAXPROCS call would do it too, but it stops the world
// and measurably slows start-up.)
func tuneRuntime(wrapper bool) {
	// With GOGC off the runtime never forces its two-minute GC; the
	// memory limit starts a collection instead when the heap really grows.
	debug.SetGCPercent(-1)
	limit := int64(16 << 20)
	if !wrapper {
		limit = 64 << 20
	}
	debug.SetMemoryLimit(limit)
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
