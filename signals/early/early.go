// Package early subscribes tend to the signals that would otherwise end it,
// in a package init function, before anything else of tend runs.
//
// Until a Go program subscribes to a signal, the runtime's handler ends the
// program on SIGTERM, SIGINT or SIGHUP, crashes it on a SIGQUIT, SIGSEGV,
// SIGBUS... sent with kill, and the kernel stops it on SIGTSTP, SIGTTIN and
// SIGTTOU. Everything before the subscription is that window: the package
// inits of every dependency, the flags, the thread reserve. Package inits
// run dependencies first and then in import-path order, so a package that
// needs nothing but os/signal runs its init among the first; that is why
// this package is small and imports so little (its test checks both).
//
// Only the tend binary links it (main imports it): a test binary that
// caught SIGINT and SIGQUIT would not stop on Ctrl-C or dump its stacks.
// main hands what was caught to the signal queue (Take), or gives the
// signals back for the subcommands that supervise nothing (Release).
package early

import (
	"os"
	"os/signal"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// SpawnerFlag is spawner.Magic, repeated here so that this package imports
// nothing of tend's; a test keeps the two equal. The spawner (tend
// re-executed as a helper) keeps the default dispositions: it is ended
// with its parent.
const SpawnerFlag = "--tend-internal-spawner"

// ShimFlag is execshim.Flag, repeated for the same reason. The exec shim
// (tend re-executed to set a service's limits before its program) must
// leave the signal mask and dispositions alone: the program inherits them.
const ShimFlag = "--tend-internal-exec-shim"

// Acted are the signals tend acts on (shutdown, reload, a VM's power-off):
// they get a channel of their own, as in the signal queue, so a flood of the
// others cannot crowd them out. SIGTERM first: each signal subscribed costs
// a round trip to the runtime's signal thread (~0.1 ms here), and TERM is
// the one a container runtime sends.
var Acted = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPWR}

// Fatal are the other signals that end, crash or stop a Go program that has
// not subscribed to them. The rest (SIGUSR1, SIGWINCH, the real-time
// signals...) the runtime's handler drops while nobody wants them: nothing
// ends tend, and there is no child yet to forward them to.
var Fatal = []os.Signal{
	syscall.SIGQUIT, syscall.SIGILL, syscall.SIGTRAP, syscall.SIGABRT,
	syscall.SIGBUS, syscall.SIGFPE, syscall.SIGSEGV, syscall.SIGSTKFLT,
	syscall.SIGSYS, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU,
}

// Buffers cover the moments before the signal queue reads them: os/signal
// drops a signal whose channel is full. The runtime keeps one pending bit
// per signal, so each channel can at worst fill with repeats.
const (
	actedBuffer = 16
	fatalBuffer = 32
)

// threads is how many threads the init makes and masks before it
// subscribes (see maskThreads): one for os/signal's loop, one for the
// runtime's signal thread, one to spare. (The main goroutine is locked to
// the main thread during package inits.) Each costs ~0.1-0.3 ms here;
// with 0 the loop's thread was left unmasked in every run, with 2, 3 or 4
// in none (docs/reliability.md, "The first milliseconds").
const threads = 3

var (
	acted, fatal chan os.Signal
	procs        int // GOMAXPROCS before the init set it to 1
	taken        atomic.Bool
)

func init() {
	if len(os.Args) == 2 && os.Args[1] == SpawnerFlag || len(os.Args) > 1 && os.Args[1] == ShimFlag {
		return
	}
	if len(os.Args) > 1 && (os.Args[1] == "ctl" || os.Args[1] == "check") {
		// `tend ctl health` runs as an exec probe every few seconds:
		// the subscription would cost it 1.5-2 ms of a ~10 ms run, and
		// give it nothing (Release would undo it). With options before
		// the subcommand it is made and released.
		return
	}
	// GOMAXPROCS stays 1 until the thread reserve (pid1) or Release sets
	// it: with a second P idle the runtime could start a thread of its
	// own, unmasked, for os/signal's loop.
	procs = runtime.GOMAXPROCS(1)
	maskThreads(threads)
	acted = make(chan os.Signal, actedBuffer)
	fatal = make(chan os.Signal, fatalBuffer)
	signal.Notify(acted, Acted...)
	signal.Notify(fatal, Fatal...)
	if os.Getpid() != 1 {
		// 32-34 are the runtime's own, which os/signal never delivers
		// and whose default ends tend; as PID 1 the kernel never
		// delivers a default-action signal. signals.ShieldReserved says
		// so again later and restores them around every fork.
		for sig := 32; sig <= 34; sig++ {
			ignore(sig)
		}
	}
}

// Take returns the channels the init subscribed, the signals each carries
// and GOMAXPROCS as it was; ok is false when the init subscribed nothing.
// The caller owns them from then on.
func Take() (actedC, fatalC <-chan os.Signal, maxProcs int, ok bool) {
	if acted == nil || taken.Swap(true) {
		return nil, nil, 0, false
	}
	return acted, fatal, procs, true
}

// Release gives the signals their default behaviour back, for the
// subcommands that supervise nothing (`tend ctl`, `tend check`): Ctrl-C ends
// them as it ends any program.
func Release() {
	if acted == nil || taken.Swap(true) {
		return
	}
	signal.Stop(acted)
	signal.Stop(fatal)
	runtime.GOMAXPROCS(procs)
}

// queued is what the goroutine threads block (signals.ThreadBlocked): every
// real-time signal, SIGTTOU and SIGTTIN. Real-time ones that a rewrite makes
// urgent are blocked here too; any thread that does not block them takes
// them, and a fork gives the child an empty mask whatever its thread
// blocks.
var queued = func() (set uint64) {
	for sig := 35; sig <= 64; sig++ {
		set |= 1 << (sig - 1)
	}
	return set | 1<<(syscall.SIGTTOU-1) | 1<<(syscall.SIGTTIN-1)
}()

// maskThreads has n goroutines lock a thread each at the same time and
// block the queued signals on it, so that os/signal's loop, which the first
// Notify starts and which then sleeps for good on whatever thread runs it,
// lands on a masked thread (docs/reliability.md, "The first milliseconds").
// With GOMAXPROCS 1 every thread they take is made for, or reused by, one
// of them.
func maskThreads(n int) {
	var arrived atomic.Int32
	var exited sync.WaitGroup
	release := make(chan struct{})
	exited.Add(n)
	for range n {
		go func() {
			defer exited.Done()
			runtime.LockOSThread()
			set := queued
			syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 0 /* SIG_BLOCK */, uintptr(unsafe.Pointer(&set)), 0, 8, 0, 0)
			if arrived.Add(1) == int32(n) {
				close(release)
			}
			<-release
			runtime.UnlockOSThread()
		}()
	}
	exited.Wait()
}

// ignore sets sig to SIG_IGN. The kernel's struct sigaction, the same on
// every architecture tend is built for; SIG_IGN needs no restorer.
func ignore(sig int) {
	act := struct {
		handler, flags, restorer uintptr
		mask                     uint64
	}{handler: 1}
	syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&act)), 0, 8, 0, 0)
}
