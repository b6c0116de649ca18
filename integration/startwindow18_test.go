package integration

// Issue 18: a signal in tend's first milliseconds. The slow-start build
// (-tags tendslowstart) pauses 300 ms after its flags are read, before tend
// proper starts, standing in for whatever makes a start slow. Before the
// early subscription (signals/early), the pause was part of the window in
// which SIGTERM ended tend and a SIGQUIT or SIGSEGV sent with kill crashed
// it. TEND_SLOW_BIN_UNDER_TEST runs an older build with the same hook.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func slowBinUnderTest() string {
	if b := os.Getenv("TEND_SLOW_BIN_UNDER_TEST"); b != "" {
		return b
	}
	return slowBin
}

// TestSignalDuringStartIsKept: every signal that would end, crash or stop
// a Go program that has not subscribed, sent during the pause, is kept and
// acted on once tend runs: it is forwarded to the child (which dies of it,
// and tend exits 128+n), or, for a supervisor, TERM is a clean shutdown.
func TestSignalDuringStartIsKept(t *testing.T) {
	t.Parallel()
	cfg := writeConfig(t, `
[services.idle]
command = ["sleep", "60"]
`)
	cases := []struct {
		name string
		sig  syscall.Signal
		cfg  bool
		want int // exit status; -1: any, as long as tend was not killed or stopped
	}{
		{"TERM", syscall.SIGTERM, false, 128 + 15},
		{"INT", syscall.SIGINT, false, 128 + 2},
		{"HUP", syscall.SIGHUP, false, 128 + 1},
		{"QUIT", syscall.SIGQUIT, false, 128 + 3},
		{"SEGV", syscall.SIGSEGV, false, 128 + 11},
		{"TSTP", syscall.SIGTSTP, false, -1},
		{"TERM supervisor", syscall.SIGTERM, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := []string{"--", "sleep", "60"}
			if c.cfg {
				args = []string{"--config", cfg}
			}
			cmd := exec.Command(slowBinUnderTest(), args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // inside the 300 ms pause
			if err := cmd.Process.Signal(c.sig); err != nil {
				t.Fatal(err)
			}
			if c.sig == syscall.SIGTSTP {
				// Not stopped: a stopped tend would never end the child.
				// Let the pause end, then end it the ordinary way.
				time.Sleep(500 * time.Millisecond)
				if state := procState(cmd.Process.Pid); state == "T" {
					_ = cmd.Process.Signal(syscall.SIGCONT)
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
					t.Fatal("tend was stopped by a SIGTSTP sent during its start")
				}
				// The child got the TSTP (forwarded) and is stopped: TERM
				// then CONT, both forwarded, end it.
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = cmd.Process.Signal(syscall.SIGCONT)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("SIG%s sent during the start: tend still running after 15 s", c.name)
			}
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				ws := ee.Sys().(syscall.WaitStatus)
				if ws.Signaled() {
					t.Fatalf("SIG%s sent during the start killed tend (%v)", c.name, ws.Signal())
				}
				code = ws.ExitStatus()
			} else if err != nil {
				t.Fatal(err)
			}
			if c.want >= 0 && code != c.want {
				t.Errorf("SIG%s sent during the start: exit %d, want %d", c.name, code, c.want)
			}
		})
	}
}

// procState is the state letter of pid in /proc (R, S, T, Z...), or "".
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	// pid (comm) S ...: comm may hold spaces and parentheses.
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' && i+2 < len(b) {
			return string(b[i+2])
		}
	}
	return ""
}

// TestEarlyInitBeforeTendsOwn: the early subscription's init runs before
// the init of any other package of tend's or of its dependencies outside
// the standard library (GODEBUG=inittrace lists inits in the order they
// ran), but one: the TOML parser's internal package needs only the
// standard library's time and sorts first by import path, so the runtime
// runs its init (a few time zones, ~0.3 ms) as soon as time's is done. The
// runtime's start and the standard library's inits are all else that is
// left of the window.
func TestEarlyInitBeforeTendsOwn(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(tendBin, "--", "true")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var order []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "init" {
			order = append(order, f[1])
		}
	}
	const earlyPkg = "github.com/tend-init/tend/signals/early"
	seen := false
	for _, pkg := range order {
		if pkg == earlyPkg {
			seen = true
			break
		}
		if strings.Contains(pkg, ".") && !strings.HasPrefix(pkg, "vendor/") && pkg != "github.com/BurntSushi/toml/internal" {
			t.Errorf("%s was initialised before %s", pkg, earlyPkg)
		}
	}
	if !seen {
		t.Fatalf("%s not in the init trace:\n%s", earlyPkg, out)
	}
}
