package signals

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// runtimeReserved are signals that os/signal can never deliver: the Go
// runtime leaves 32, 33 (glibc's thread cancel and setxid) and 34 (musl's
// SIGSYNCCALL) at their default action, which for a real-time signal is to
// terminate. SIGPROF is similar but harmless: the runtime swallows it.
var runtimeReserved = []unix.Signal{32, 33, 34}

// shielded is set when the reserved signals are ignored.
var shielded atomic.Bool

// kernelSigaction is the kernel's struct sigaction for rt_sigaction on
// the generic layout (amd64, arm64, 386, arm, ppc64le, s390x, riscv64):
// handler, flags (an unsigned long: 32 bits on 386 and arm), restorer, and
// the 64-bit mask. Only SIG_IGN and SIG_DFL are installed, so no restorer
// is needed.
type kernelSigaction struct {
	handler  uintptr
	flags    uintptr
	restorer uintptr
	mask     uint64
}

func setDisposition(sig unix.Signal, handler uintptr) {
	act := kernelSigaction{handler: handler}
	unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
}

// ShieldReserved keeps the runtime-reserved signals from killing tend. As
// PID 1 nothing is needed: the kernel never delivers a signal to a
// namespace's init while its action is the default.
func ShieldReserved(pid1 bool) {
	if pid1 {
		return
	}
	for _, sig := range runtimeReserved {
		setDisposition(sig, 1) // SIG_IGN
	}
	shielded.Store(true)
}

// WithDefaultDispositions runs start (a fork and exec) with the reserved
// signals back at their default action, because an ignored signal stays
// ignored across exec and children must start with default dispositions,
// and with the queued signals unblocked on the forking thread (see Queued),
// because the child gets that thread's mask and must start with an empty
// one. The window is the few microseconds of one vfork.
func WithDefaultDispositions(start func()) {
	defer unblockForFork()()
	if !shielded.Load() {
		start()
		return
	}
	for _, sig := range runtimeReserved {
		setDisposition(sig, 0) // SIG_DFL
	}
	defer func() {
		for _, sig := range runtimeReserved {
			setDisposition(sig, 1)
		}
	}()
	start()
}
