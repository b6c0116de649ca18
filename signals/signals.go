package signals

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Handled is every signal tend subscribes to: all catchable signals but
// SIGURG and the ones the runtime keeps (see runtimeReserved). Never a catch-all signal.Notify: that would also deliver SIGURG,
// which the Go runtime sends itself to preempt goroutines.
func Handled() []os.Signal {
	var list []os.Signal
	for n := unix.Signal(1); n <= Max; n++ {
		switch n {
		case unix.SIGKILL, unix.SIGSTOP:
			// Cannot be caught.
		case unix.SIGURG:
			// The runtime's preemption signal; one sent with kill is
			// absorbed by the runtime's own handler.
		case 32, 33, 34:
			// Notify cannot catch these; ShieldReserved deals with them.
		default:
			list = append(list, n)
		}
	}
	return list
}

// Action is what tend does with a signal it received.
type Action int

const (
	Forward  Action = iota // deliver to the main program (or the services)
	Absorb                 // drop it
	Shutdown               // start the graceful shutdown
	Reload                 // read the config again
	PowerOff               // VM mode: graceful shutdown, then power the machine off
	Reboot                 // VM mode: graceful shutdown, then reboot the machine
)

func (a Action) String() string {
	switch a {
	case Forward:
		return "forward"
	case Absorb:
		return "absorb"
	case Shutdown:
		return "shutdown"
	case Reload:
		return "reload"
	case PowerOff:
		return "power-off"
	case Reboot:
		return "reboot"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Mode is how tend is running, which changes what some signals mean.
type Mode int

const (
	Wrapper    Mode = iota // one main program, tini-style
	Supervisor             // services from a config file
)

// VM is added to Wrapper or Supervisor when tend is the init of a virtual
// machine (SPEC section 9): there is nobody to exit to, so the signals that
// end the machine power it off or reboot it instead.
const VM Mode = 1 << 4

func (m Mode) String() string {
	base := "wrapper"
	if m&^VM == Supervisor {
		base = "supervisor"
	}
	if m&VM != 0 {
		return "vm-" + base
	}
	return base
}

// Decide says what to do with sig, received from outside, in mode.
func Decide(mode Mode, sig unix.Signal) Action {
	if keptByTend(sig) {
		return Absorb
	}
	return meaning(mode, sig)
}

// keptByTend: signals that are tend's own business, never the program's.
func keptByTend(sig unix.Signal) bool {
	switch sig {
	case unix.SIGCHLD:
		// Belongs to the reaper; forwarding it would tell the child about
		// exits of processes that are not its own.
		return true
	case unix.SIGPIPE:
		// tend raises SIGPIPE on itself when its own output pipe closes and
		// cannot tell that from one sent with kill; forwarding would kill the
		// child for tend's broken pipe.
		return true
	case unix.SIGURG:
		// Never subscribed (the runtime's); listed for completeness.
		return true
	}
	return false
}

// meaning is what sig, one tend does not keep, means in mode.
func meaning(mode Mode, sig unix.Signal) Action {
	if mode&VM != 0 {
		switch sig {
		case unix.SIGTERM:
			// `kill 1` inside the machine, or an agent of the host asking
			// it to stop: there is no parent to hand an exit status to, so
			// the graceful shutdown ends in a power-off.
			return PowerOff
		case unix.SIGPWR:
			// The power-failure signal (sysvinit's powerfail, sent by UPS
			// and hypervisor agents): shut down and power off.
			return PowerOff
		case unix.SIGINT:
			// Ctrl-Alt-Del: once tend has disabled the kernel's own reboot
			// on it (LINUX_REBOOT_CMD_CAD_OFF) the kernel sends SIGINT to
			// init instead, and sysvinit's answer is a reboot.
			return Reboot
		}
		// Everything else means what it means without a VM: SIGHUP still
		// reloads a supervisor, other signals are forwarded.
		mode &^= VM
	}
	if mode == Supervisor {
		switch sig {
		case unix.SIGTERM, unix.SIGINT:
			return Shutdown
		case unix.SIGHUP:
			return Reload
		}
	}
	// Wrapper mode forwards SIGTERM and SIGINT too: the main program decides
	// when to exit, and tend follows it, as tini does.
	return Forward
}

// Rewrite maps a received signal to the one delivered; 0 drops it.
type Rewrite map[unix.Signal]unix.Signal

// Apply returns the signal to deliver for sig and false when it is dropped.
func (r Rewrite) Apply(sig unix.Signal) (unix.Signal, bool) {
	to, ok := r[sig]
	if !ok {
		return sig, true
	}
	return to, to != 0
}

// ParseRewrite reads dumb-init's "S:R" (numbers or names); R = 0 drops S.
func ParseRewrite(s string) (from, to unix.Signal, err error) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("rewrite %q must be FROM:TO, e.g. 15:3 or TERM:QUIT (TO = 0 drops FROM)", s)
	}
	if from, err = Parse(a); err != nil {
		return 0, 0, fmt.Errorf("rewrite %q: %v", s, err)
	}
	if strings.TrimSpace(b) == "0" {
		return from, 0, nil
	}
	if to, err = Parse(b); err != nil {
		return 0, 0, fmt.Errorf("rewrite %q: %v", s, err)
	}
	return from, to, nil
}

// Route is the whole decision for a signal received from outside: signals
// tend keeps for itself are absorbed before anything else, then the rewrite
// table turns the received signal into the one that counts (dumb-init's -r),
// then the mode says what that one means.
func Route(mode Mode, rw Rewrite, received unix.Signal) (Action, unix.Signal) {
	if keptByTend(received) {
		return Absorb, received
	}
	sig, keep := rw.Apply(received)
	if !keep {
		return Absorb, received
	}
	// A rewrite to a signal tend keeps (TERM:CHLD) delivers nothing.
	return Decide(mode, sig), sig
}
