package reaper

import (
	"errors"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startReaper runs a reaper on real SIGCHLDs. Tests in this package are the
// only children of the test process, so it may reap them all.
func startReaper(t *testing.T, onOrphan func(Exit)) *Reaper {
	t.Helper()
	r := New(onOrphan)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, syscall.SIGCHLD)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { r.Run(chld, stop); close(done) }()
	t.Cleanup(func() { signal.Stop(chld); close(stop); <-done })
	return r
}

func wait(t *testing.T, ch <-chan Exit) Exit {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("exit never delivered")
		return Exit{}
	}
}

func TestExitCodes(t *testing.T) {
	r := startReaper(t, nil)
	cases := []struct {
		script string
		want   int
	}{
		{"exit 0", 0}, {"exit 3", 3}, {"exit 255", 255}, {"kill -TERM $$", 143}, {"kill -KILL $$", 137},
	}
	for _, c := range cases {
		_, ch, err := r.startChan(Cmd{Args: []string{"sh", "-c", c.script}, Env: os.Environ()})
		if err != nil {
			t.Fatal(err)
		}
		if e := wait(t, ch); e.Code() != c.want {
			t.Errorf("%q: code %d (%s), want %d", c.script, e.Code(), e, c.want)
		}
	}
}

// TestExitBeforeStartReturns starts many children that exit at once from
// several goroutines while the reaper runs: every exit must reach its owner,
// none may be taken for an orphan.
func TestExitBeforeStartReturns(t *testing.T) {
	var mu sync.Mutex
	orphans := 0
	r := startReaper(t, func(Exit) { mu.Lock(); orphans++; mu.Unlock() })
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				pid, ch, err := r.startChan(Cmd{Args: []string{"/bin/true"}})
				if err != nil {
					t.Error(err)
					return
				}
				if e := wait(t, ch); e.Pid != pid || e.Code() != 0 {
					t.Errorf("got %+v for pid %d", e, pid)
				}
			}
		}()
	}
	wg.Wait()
	if orphans != 0 {
		t.Fatalf("%d owned exits were reported as orphans", orphans)
	}
}

func TestOrphanIsReapedAndReported(t *testing.T) {
	got := make(chan Exit, 1)
	r := startReaper(t, func(e Exit) { got <- e })
	// A child started behind the reaper's back stands in for an adopted
	// orphan: nobody owns its PID.
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit 9"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Pid != pid || e.Code() != 9 {
			t.Fatalf("got %+v, want pid %d code 9", e, pid)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("orphan never reaped")
	}
	select {
	case <-r.NoChildren():
	case <-time.After(10 * time.Second):
		t.Fatal("NoChildren never closed")
	}
}

func TestSignalOnlyLiveChildren(t *testing.T) {
	r := startReaper(t, nil)
	pid, ch, err := r.startChan(Cmd{Args: []string{"sleep", "30"}, Env: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Signal(pid, unix.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, ch); e.Code() != 143 {
		t.Fatalf("got %s", e)
	}
	if err := r.Signal(pid, unix.SIGTERM, false); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("signal to a reaped pid: %v, want ESRCH", err)
	}
}

// A pidfd is given only for a live child, and signals that child.
func TestPidFDOnlyForLiveChildren(t *testing.T) {
	r := startReaper(t, nil)
	pid, ch, err := r.startChan(Cmd{Args: []string{"sleep", "30"}, Env: os.Environ()})
	if err != nil {
		t.Fatal(err)
	}
	fd, err := r.PidFD(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, ch); e.Code() != 143 {
		t.Fatalf("got %s", e)
	}
	if fd, err := r.PidFD(pid); !errors.Is(err, unix.ESRCH) {
		unix.Close(fd)
		t.Fatalf("pidfd for a reaped pid: %v, want ESRCH", err)
	}
	// The old descriptor still names the reaped process, never a new one.
	if err := unix.PidfdSendSignal(fd, unix.SIGTERM, nil, 0); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("signal through the pidfd of a reaped process: %v, want ESRCH", err)
	}
}

func TestStartErrors(t *testing.T) {
	r := startReaper(t, nil)
	dir := t.TempDir()
	script := dir + "/noexec"
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o644)
	noShebang := dir + "/noshebang"
	os.WriteFile(noShebang, []byte("echo hi\n"), 0o755)
	cases := []struct {
		args []string
		env  []string
		want int
	}{
		{[]string{"definitely-not-here"}, []string{"PATH=" + dir}, CodeNotFound},
		{[]string{"/no/such/file"}, nil, CodeNotFound},
		{[]string{script}, nil, CodeNotExecutable},
		{[]string{"noexec"}, []string{"PATH=" + dir}, CodeNotExecutable},
		{[]string{noShebang}, nil, CodeNotExecutable},
		{[]string{dir}, nil, CodeNotExecutable},
		{nil, nil, CodeNotFound},
	}
	for _, c := range cases {
		_, _, err := r.startChan(Cmd{Args: c.args, Env: c.env})
		var se *StartError
		if !errors.As(err, &se) || se.Code != c.want {
			t.Errorf("Start(%q) = %v, want code %d", c.args, err, c.want)
		}
	}
}

func TestStartErrorClassifiesResourceShortage(t *testing.T) {
	cases := []struct {
		err         error
		code        int
		couldNotRun bool
		text        string
	}{
		{syscall.EAGAIN, CodeCouldNotRun, true, "could not run prog: resource temporarily unavailable (EAGAIN)"},
		{syscall.EMFILE, CodeCouldNotRun, true, "could not run prog: too many open files (EMFILE)"},
		{syscall.ENFILE, CodeCouldNotRun, true, "could not run prog: too many open files in system (ENFILE)"},
		{syscall.ENOMEM, CodeCouldNotRun, true, "could not run prog: cannot allocate memory (ENOMEM)"},
		{syscall.EACCES, CodeNotExecutable, false, "cannot run prog: /bin/prog: permission denied (is it executable?)"},
		{syscall.ENOENT, CodeNotFound, false, "cannot run prog: /bin/prog: no such file or directory"},
		{syscall.E2BIG, CodeNotExecutable, false, "cannot run prog: argument list too long"},
	}
	for _, c := range cases {
		err := error(startError("prog", "/bin/prog", c.err))
		if ExitCode(err) != c.code || errors.Is(err, ErrCouldNotRun) != c.couldNotRun || !errors.Is(err, c.err) || err.Error() != c.text {
			t.Errorf("%v: code %d, could-not-run %v, text %q; want %d, %v, %q",
				c.err, ExitCode(err), errors.Is(err, ErrCouldNotRun), err, c.code, c.couldNotRun, c.text)
		}
	}
}

// TestStartOutOfDescriptorsIsNotExit126 runs Start with no descriptor free:
// the fork's pipe cannot be made (EMFILE). That is "could not run", never
// "not executable".
func TestStartOutOfDescriptorsIsNotExit126(t *testing.T) {
	r := startReaper(t, nil)
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	// Fill every descriptor below a low limit.
	var held []int
	defer func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	}()
	lim := unix.Rlimit{Cur: 64, Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	defer unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		held = append(held, fd)
	}
	_, _, err := r.startChan(Cmd{Args: []string{"/bin/true"}})
	unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
	if !errors.Is(err, ErrCouldNotRun) || !errors.Is(err, unix.EMFILE) || ExitCode(err) == CodeNotExecutable {
		t.Fatalf("Start with no descriptor left: %v (code %d), want ErrCouldNotRun wrapping EMFILE", err, ExitCode(err))
	}
	t.Log(err)
}
