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
	v.SetDeliver(d.deliver)
	v.Request(signals.Reboot, "test")
	v.Request(signals.PowerOff, "test")
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

// TestRouteOrders: each signal is decided once, at the edge; the
// supervisor gets an order, never a signal to interpret again.
func TestRouteOrders(t *testing.T) {
	rw := signals.Rewrite{unix.SIGUSR1: unix.SIGTERM, unix.SIGUSR2: 0}
	cases := []struct {
		name   string
		vm     bool
		send   unix.Signal
		action signals.Action
		sig    unix.Signal
	}{
		{"forwarded", false, unix.SIGWINCH, signals.Forward, unix.SIGWINCH},
		{"reload", false, unix.SIGHUP, signals.Reload, unix.SIGHUP},
		{"shutdown", false, unix.SIGTERM, signals.Shutdown, unix.SIGTERM},
		{"rewritten into a shutdown", false, unix.SIGUSR1, signals.Shutdown, unix.SIGTERM},
		{"vm: forwarded", true, unix.SIGWINCH, signals.Forward, unix.SIGWINCH},
		{"vm: reload", true, unix.SIGHUP, signals.Reload, unix.SIGHUP},
		{"vm: SIGPWR powers off", true, unix.SIGPWR, signals.Shutdown, unix.SIGTERM},
		{"vm: SIGTERM powers off", true, unix.SIGTERM, signals.Shutdown, unix.SIGTERM},
		{"vm: Ctrl-Alt-Del reboots", true, unix.SIGINT, signals.Shutdown, unix.SIGINT},
		{"vm: rewritten into a power-off", true, unix.SIGUSR1, signals.Shutdown, unix.SIGTERM},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v *vm
			if c.vm {
				v = &vm{action: signals.PowerOff}
			}
			in := make(chan os.Signal, 2)
			out := routeOrders(in, rw, v)
			in <- unix.SIGUSR2 // dropped by the rewrite table: never an order
			in <- c.send
			select {
			case o := <-out:
				if o.Action != c.action || o.Signal != c.sig {
					t.Fatalf("%v became %v %v, want %v %v", c.send, o.Action, signals.Name(o.Signal), c.action, signals.Name(c.sig))
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no order reached the supervisor")
			}
			close(in)
			if v == nil {
				return
			}
			v.mu.Lock()
			defer v.mu.Unlock()
			want := signals.PowerOff
			if c.send == unix.SIGINT {
				want = signals.Reboot
			}
			if c.action == signals.Shutdown && (!v.asked || v.action != want) {
				t.Errorf("asked=%v action=%v, want %v", v.asked, v.action, want)
			}
		})
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
