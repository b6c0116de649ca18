package signals

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The main thread is kept for onMainThread: the catcher only runs there.
func init() { runtime.LockOSThread() }

var mainThread = make(chan func())

func TestMain(m *testing.M) {
	done := make(chan int)
	go func() { done <- m.Run() }()
	for {
		select {
		case f := <-mainThread:
			f()
		case code := <-done:
			os.Exit(code)
		}
	}
}

// onMainThread runs f on the main thread and returns a channel closed when
// f has returned.
func onMainThread(f func()) <-chan struct{} {
	done := make(chan struct{})
	mainThread <- func() { defer close(done); f() }
	return done
}

// startSleeper starts a child that sleeps until signalled, in its own
// process group, and returns its PID and a pidfd for it. The test is its
// parent and reaps it itself (there is no reaper here).
func startSleeper(t *testing.T) (int, int) {
	t.Helper()
	pid, err := syscall.ForkExec("/bin/sleep", []string{"sleep", "60"},
		&syscall.ProcAttr{Sys: &syscall.SysProcAttr{Setpgid: true}})
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		unix.Close(fd)
	})
	return pid, fd
}

// endedBy waits up to a few seconds for pid to end and returns the signal
// that killed it, sending kick every 20 ms meanwhile: a signal that comes
// before the catcher waits, or while it forwards, goes to the runtime's
// handler, and nothing is subscribed in this test (tend subscribes every
// signal, and os/signal forwards those).
func endedBy(t *testing.T, pid int, kick func()) unix.Signal {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		kick()
		// The collector must still run while the main goroutine sits
		// in the forwarding loop (in the system-call state).
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
		var ws unix.WaitStatus
		if got, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got == pid {
			return ws.Signal()
		}
	}
	t.Fatalf("process %d did not end", pid)
	return 0
}

// RunDirect forwards through the table, rewritten, to the process or its
// group, absorbs what the table absorbs, and returns on Stop.
func TestRunDirectForwards(t *testing.T) {
	for _, group := range []bool{false, true} {
		pid, fd := startSleeper(t)
		c := NewCatcher([]unix.Signal{unix.SIGUSR1, unix.SIGUSR2})
		r := Forwarding{PidFD: fd}
		r.To[unix.SIGUSR1] = uint8(unix.SIGTERM) // a rewrite
		// SIGUSR2 absorbed (0)
		if group {
			r.Group = pid
		}
		done := onMainThread(func() { c.RunDirect(&r) })
		for range 10 {
			unix.Kill(os.Getpid(), unix.SIGUSR2)
			time.Sleep(5 * time.Millisecond)
		}
		if unix.Kill(pid, 0) != nil {
			t.Fatalf("group=%v: an absorbed signal reached the child", group)
		}
		if got := endedBy(t, pid, func() { unix.Kill(os.Getpid(), unix.SIGUSR1) }); got != unix.SIGTERM {
			t.Errorf("group=%v: child ended by %v, want SIGTERM", group, got)
		}
		c.Stop()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("group=%v: RunDirect did not return after Stop", group)
		}
	}
}

// Forwarding wakes no other thread. Two ways it did, both found by hand:
// leaving the system-call state after each wait (exitsyscall woke sysmon:
// 466-476 wake-ups here with Run in place of RunDirect), and blocking the
// waited-for set between waits (the kernel woke another thread for the
// signal just taken, retarget_shared_pending: 211-250). 200 signals, 2 ms
// apart, from another process: the other threads of this one must sleep
// through them.
func TestRunDirectWakesNoOtherThread(t *testing.T) {
	c := NewCatcher([]unix.Signal{unix.SIGUSR1, unix.SIGUSR2})
	var r Forwarding // all absorbed
	done := onMainThread(func() { c.RunDirect(&r) })
	defer func() { c.Stop(); <-done }()
	time.Sleep(50 * time.Millisecond) // the loop waits, the runtime settles
	const n = 200
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do kill -USR1 %d; sleep 0.002; i=$((i+1)); done", n, os.Getpid())
	// Waiting in wait4 would keep a P in a system call, and sysmon
	// polling it; parked on a channel, every other thread can sleep.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, unix.SIGCHLD)
	defer signal.Stop(chld)
	before := otherThreadsSwitches(t)
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", script}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	for {
		<-chld
		if got, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got == pid {
			break
		}
	}
	woken := otherThreadsSwitches(t) - before
	if ws.ExitStatus() != 0 {
		t.Fatalf("sender: %v", ws)
	}
	t.Logf("%d signals: the other threads switched %d times", n, woken)
	if woken > n/2 { // about 20 here; with the set blocked, 210-250
		t.Errorf("%d signals woke the other threads %d times: the loop leaves the system-call state, or blocks what it waits for", n, woken)
	}
}

// otherThreadsSwitches sums the voluntary context switches of every thread
// of the process but the main one.
func otherThreadsSwitches(t *testing.T) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, task := range tasks {
		if task.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // the thread is gone
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				sum += n
			}
		}
	}
	return sum
}

// Stop before RunDirect starts waiting: it returns at once.
func TestRunDirectStoppedFirst(t *testing.T) {
	c := NewCatcher([]unix.Signal{unix.SIGUSR1})
	c.Stop()
	var r Forwarding
	select {
	case <-onMainThread(func() { c.RunDirect(&r) }):
	case <-time.After(5 * time.Second):
		t.Fatal("RunDirect waited after Stop")
	}
}

func TestForwardingFor(t *testing.T) {
	rw := Rewrite{unix.SIGUSR1: unix.SIGTERM, unix.SIGHUP: 0}
	r := ForwardingFor(Wrapper, rw, []unix.Signal{unix.SIGUSR1, unix.SIGHUP, unix.SIGINT, unix.SIGPIPE})
	want := map[unix.Signal]unix.Signal{unix.SIGUSR1: unix.SIGTERM, unix.SIGINT: unix.SIGINT}
	for s := unix.Signal(0); s < 128; s++ {
		if got := unix.Signal(r.To[s]); got != want[s] {
			t.Errorf("To[%v] = %v, want %v", s, got, want[s])
		}
	}
}
