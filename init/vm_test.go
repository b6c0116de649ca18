package pid1

import (
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/cli"
	"github.com/tend-init/tend/signals"
)

func TestIsMountPoint(t *testing.T) {
	for path, want := range map[string]bool{"/": true, "/proc": true, t.TempDir(): false, "/no/such/path": false} {
		if got := isMountPoint(path); got != want {
			t.Errorf("isMountPoint(%q) = %v, want %v", path, got, want)
		}
	}
	if !procMounted() {
		t.Error("procMounted() = false with /proc mounted")
	}
}

func TestDetectVM(t *testing.T) {
	if os.Getpid() == 1 {
		t.Skip("the test runs as PID 1")
	}
	if v := detectVM(cli.Options{}); v != nil {
		t.Errorf("detectVM without --vm and not PID 1 = %+v, want nil", v)
	}
	v := detectVM(cli.Options{VM: true})
	if v == nil || v.kernel || v.pid1 || v.action != signals.PowerOff {
		t.Errorf("detectVM(--vm) = %+v, want a VM that is neither kernel-started nor PID 1, powering off", v)
	}
}

// deliveries records what a request hands to the running loop.
type deliveries struct {
	mu  sync.Mutex
	got []string
}

func (d *deliveries) deliver(a signals.Action, first bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := a.String()
	if first {
		s += " first"
	}
	d.got = append(d.got, s)
}

func TestRequestFirstDecides(t *testing.T) {
	v := &vm{action: signals.PowerOff}
	var d deliveries
	v.setDeliver(d.deliver)
	v.request(signals.Reboot, "test")
	v.request(signals.PowerOff, "test")
	if err := v.power(false); err != nil {
		t.Fatal(err)
	}
	if v.action != signals.Reboot {
		t.Errorf("action = %v, want reboot (the first request decides)", v.action)
	}
	want := "reboot first,power-off,power-off"
	if got := strings.Join(d.got, ","); got != want {
		t.Errorf("delivered %s, want %s", got, want)
	}
	var none *vm
	if err := none.power(true); err == nil {
		t.Error("power on a tend that is not a VM's init did not fail")
	}
}

func TestRouteSupervisor(t *testing.T) {
	v := &vm{action: signals.PowerOff}
	in := make(chan os.Signal, 8)
	out := v.routeSupervisor(in, signals.Rewrite{unix.SIGUSR1: unix.SIGTERM, unix.SIGUSR2: 0})
	next := func() os.Signal {
		t.Helper()
		select {
		case s := <-out:
			return s
		case <-time.After(5 * time.Second):
			t.Fatal("nothing reached the supervisor")
			return nil
		}
	}
	// Forwarded and reloaded signals pass through; dropped ones do not.
	in <- unix.SIGUSR2
	in <- unix.SIGWINCH
	if s := next(); s != unix.SIGWINCH {
		t.Errorf("SIGWINCH reached the supervisor as %v", s)
	}
	in <- unix.SIGHUP
	if s := next(); s != unix.SIGHUP {
		t.Errorf("SIGHUP reached the supervisor as %v", s)
	}
	// SIGPWR: a power-off, seen by the supervisor as SIGTERM.
	in <- unix.SIGPWR
	if s := next(); s != unix.SIGTERM {
		t.Errorf("SIGPWR reached the supervisor as %v, want SIGTERM", s)
	}
	// A later SIGINT hurries the shutdown but does not turn it into a reboot.
	in <- unix.SIGINT
	if s := next(); s != unix.SIGINT {
		t.Errorf("SIGINT reached the supervisor as %v", s)
	}
	// A rewritten USR1 counts as the TERM it became.
	in <- unix.SIGUSR1
	if s := next(); s != unix.SIGTERM {
		t.Errorf("SIGUSR1 (rewritten to TERM) reached the supervisor as %v", s)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.asked || v.action != signals.PowerOff {
		t.Errorf("asked=%v action=%v, want a power-off", v.asked, v.action)
	}
}

func TestRouteSupervisorReboot(t *testing.T) {
	v := &vm{action: signals.PowerOff}
	in := make(chan os.Signal, 1)
	out := v.routeSupervisor(in, nil)
	in <- unix.SIGINT
	select {
	case s := <-out:
		if s != unix.SIGINT {
			t.Errorf("Ctrl-Alt-Del reached the supervisor as %v, want SIGINT", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing reached the supervisor")
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.action != signals.Reboot {
		t.Errorf("action = %v, want reboot", v.action)
	}
}

// TestEndNotPID1: --vm outside PID 1 prints the status and exits instead
// of powering off (which would be the host's).
func TestEndNotPID1(t *testing.T) {
	if os.Getpid() == 1 {
		t.Skip("the test runs as PID 1")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stderr
	os.Stderr = w
	v := &vm{action: signals.PowerOff}
	v.setLogger(newLogger(0, nil))
	v.log.Out = w
	code := v.end(7)
	os.Stderr = saved
	w.Close()
	out, _ := io.ReadAll(r)
	if code != 7 {
		t.Errorf("end(7) = %d", code)
	}
	for _, want := range []string{"tend: exit status 7\n", "not PID 1: exiting instead of powering off"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if got := Exit(3); got != 3 {
		t.Errorf("Exit(3) outside a VM = %d", got)
	}
}
