package signals

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The catcher blocks its set on a thread that runs Go code: never a fault
// signal (a real fault with it blocked kills the process), never the
// reaper's SIGCHLD, the absorbed SIGPIPE or the runtime's own signals.
func TestCaughtLeavesTheRuntimeItsSignals(t *testing.T) {
	in := map[unix.Signal]bool{}
	for _, s := range Caught(Queued(nil)) {
		in[s] = true
	}
	for _, s := range []unix.Signal{unix.SIGCHLD, unix.SIGPIPE, unix.SIGPROF, unix.SIGURG,
		unix.SIGSEGV, unix.SIGBUS, unix.SIGFPE, unix.SIGILL, unix.SIGTRAP, unix.SIGSYS,
		unix.SIGKILL, unix.SIGSTOP, 32, 33, 34, 35, 64} {
		if in[s] {
			t.Errorf("Caught() has %v", s)
		}
	}
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT,
		unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH, unix.SIGTSTP, unix.SIGCONT, unix.SIGPWR} {
		if !in[s] {
			t.Errorf("Caught() lacks %v", s)
		}
	}
}

// Off the main thread Run leaves everything to os/signal and returns; Stop
// before or after never blocks and sends nothing.
func TestCatcherOffMainThread(t *testing.T) {
	c := NewCatcher(Caught(nil))
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if unix.Gettid() == unix.Getpid() {
			return // on the main thread after all: Run would wait
		}
		c.Run(func(s unix.Signal) { t.Errorf("caught %v", s) })
	}()
	<-done
	c.Stop()
	c.Stop()
}
