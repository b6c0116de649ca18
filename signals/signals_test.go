package signals

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want unix.Signal
		err  bool
	}{
		{"TERM", unix.SIGTERM, false},
		{"SIGTERM", unix.SIGTERM, false},
		{"sigusr1", unix.SIGUSR1, false},
		{"15", unix.SIGTERM, false},
		{"64", 64, false},
		{"RTMIN", 34, false},
		{"RTMIN+3", 37, false},
		{"SIGRTMAX-1", 63, false},
		{"IOT", unix.SIGABRT, false},
		{"0", 0, true},
		{"65", 0, true},
		{"RTMIN+31", 0, true},
		{"NOPE", 0, true},
		{"", 0, true},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.err)
		}
	}
}

func TestName(t *testing.T) {
	for sig, want := range map[unix.Signal]string{unix.SIGTERM: "SIGTERM", 34: "SIGRTMIN", 37: "SIGRTMIN+3", 33: "SIG33"} {
		if got := Name(sig); got != want {
			t.Errorf("Name(%d) = %q, want %q", sig, got, want)
		}
	}
}

func TestHandledIsExplicitAndComplete(t *testing.T) {
	got := map[unix.Signal]bool{}
	for _, s := range Handled() {
		got[s.(unix.Signal)] = true
	}
	for n := unix.Signal(1); n <= Max; n++ {
		excluded := n == unix.SIGKILL || n == unix.SIGSTOP || n == unix.SIGURG || (n >= 32 && n <= 34)
		if got[n] == excluded {
			t.Errorf("signal %d handled=%v", n, got[n])
		}
	}
}

func TestRoute(t *testing.T) {
	rw := Rewrite{unix.SIGUSR1: unix.SIGUSR2, unix.SIGHUP: 0, unix.SIGTERM: unix.SIGQUIT, unix.SIGPIPE: unix.SIGTERM}
	cases := []struct {
		mode       Mode
		in         unix.Signal
		wantAction Action
		wantSig    unix.Signal
	}{
		{Wrapper, unix.SIGTERM, Forward, unix.SIGQUIT},
		{Wrapper, unix.SIGINT, Forward, unix.SIGINT},
		{Wrapper, unix.SIGUSR1, Forward, unix.SIGUSR2},
		{Wrapper, unix.SIGHUP, Absorb, unix.SIGHUP},
		{Wrapper, unix.SIGCHLD, Absorb, unix.SIGCHLD},
		// SIGPIPE is absorbed before the rewrite table is consulted.
		{Wrapper, unix.SIGPIPE, Absorb, unix.SIGPIPE},
		{Wrapper, 40, Forward, 40},
		{Supervisor, unix.SIGINT, Shutdown, unix.SIGINT},
		// A rewritten TERM is what counts: dumb-init's -r 15:3 forwards QUIT.
		{Supervisor, unix.SIGTERM, Forward, unix.SIGQUIT},
		{Supervisor, unix.SIGHUP, Absorb, unix.SIGHUP},
		{Supervisor, unix.SIGWINCH, Forward, unix.SIGWINCH},
		// VM mode: the rewrite table still comes first, then the VM meaning.
		{Supervisor | VM, unix.SIGINT, Reboot, unix.SIGINT},
		{Supervisor | VM, unix.SIGPWR, PowerOff, unix.SIGPWR},
		{Supervisor | VM, unix.SIGTERM, Forward, unix.SIGQUIT},
		{Supervisor | VM, unix.SIGHUP, Absorb, unix.SIGHUP},
		{Supervisor | VM, unix.SIGUSR1, Forward, unix.SIGUSR2},
		{Supervisor | VM, unix.SIGPIPE, Absorb, unix.SIGPIPE},
		{Wrapper | VM, unix.SIGINT, Reboot, unix.SIGINT},
		{Wrapper | VM, unix.SIGPWR, PowerOff, unix.SIGPWR},
		{Wrapper | VM, unix.SIGCHLD, Absorb, unix.SIGCHLD},
		{Wrapper | VM, unix.SIGWINCH, Forward, unix.SIGWINCH},
	}
	for _, c := range cases {
		a, s := Route(c.mode, rw, c.in)
		if a != c.wantAction || s != c.wantSig {
			t.Errorf("Route(%v, %s) = %v, %s; want %v, %s", c.mode, Name(c.in), a, Name(s), c.wantAction, Name(c.wantSig))
		}
	}
	if a, _ := Route(Supervisor, nil, unix.SIGHUP); a != Reload {
		t.Errorf("SIGHUP in supervisor mode = %v, want Reload", a)
	}
	if a, _ := Route(Supervisor, nil, unix.SIGTERM); a != Shutdown {
		t.Errorf("SIGTERM in supervisor mode = %v, want Shutdown", a)
	}
}

func TestDecideVM(t *testing.T) {
	cases := []struct {
		mode Mode
		in   unix.Signal
		want Action
	}{
		{Supervisor | VM, unix.SIGTERM, PowerOff},
		{Supervisor | VM, unix.SIGPWR, PowerOff},
		{Supervisor | VM, unix.SIGINT, Reboot},
		{Supervisor | VM, unix.SIGHUP, Reload},
		{Supervisor | VM, unix.SIGQUIT, Forward},
		{Supervisor | VM, unix.SIGCHLD, Absorb},
		{Supervisor | VM, unix.SIGPIPE, Absorb},
		{Supervisor | VM, unix.SIGURG, Absorb},
		{Wrapper | VM, unix.SIGTERM, PowerOff},
		{Wrapper | VM, unix.SIGPWR, PowerOff},
		{Wrapper | VM, unix.SIGINT, Reboot},
		// A wrapper has nothing to reload: SIGHUP goes to the program.
		{Wrapper | VM, unix.SIGHUP, Forward},
		{Wrapper | VM, 40, Forward},
		// Without VM, SIGPWR is an ordinary signal.
		{Supervisor, unix.SIGPWR, Forward},
		{Wrapper, unix.SIGPWR, Forward},
	}
	for _, c := range cases {
		if got := Decide(c.mode, c.in); got != c.want {
			t.Errorf("Decide(%v, %s) = %v, want %v", c.mode, Name(c.in), got, c.want)
		}
		if got, sig := Route(c.mode, nil, c.in); got != c.want || sig != c.in {
			t.Errorf("Route(%v, nil, %s) = %v, %s; want %v, %s", c.mode, Name(c.in), got, Name(sig), c.want, Name(c.in))
		}
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{Wrapper: "wrapper", Supervisor: "supervisor", Wrapper | VM: "vm-wrapper", Supervisor | VM: "vm-supervisor"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}

func TestParseRewrite(t *testing.T) {
	cases := []struct {
		in       string
		from, to unix.Signal
		err      bool
	}{
		{"15:3", unix.SIGTERM, unix.SIGQUIT, false},
		{"TERM:QUIT", unix.SIGTERM, unix.SIGQUIT, false},
		{"1:0", unix.SIGHUP, 0, false},
		{"15", 0, 0, true},
		{"15:x", 0, 0, true},
		{"x:1", 0, 0, true},
	}
	for _, c := range cases {
		from, to, err := ParseRewrite(c.in)
		if (err != nil) != c.err || from != c.from || to != c.to {
			t.Errorf("ParseRewrite(%q) = %v, %v, %v", c.in, from, to, err)
		}
	}
}
