package integration

// Issue 18, the logs and tend ctl: a dropped follower is told, a removed
// service's ring stays gone, escapes do not reach a terminal or tend's own
// log. The tests of tend itself fail on 5fd2559 (run them with
// TEND_BIN_UNDER_TEST=<old tend>); tend ctl is always the new one.

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startUnderTest is startControlled with the tend under test.
func startUnderTest(t *testing.T, body string) *controlled {
	t.Helper()
	return startControlledWith(t, body, func(cfg string) run {
		return run{pid1: true, bin: binUnderTest(), args: []string{"--config", cfg}}
	})
}

// TestLogsFollowDroppedIsTold: `tend ctl logs -f` behind a reader that
// stalls while a service writes 200,000 lines is dropped; it says so on
// stderr and exits 3, not 0 as when tend ends the stream. 200,000 is
// three times the 65,536 lines a follower may hold: room for as many
// taken in one batch and held by the stalled send, and for what the
// socket and pipes take in.
func TestLogsFollowDroppedIsTold(t *testing.T) {
	needRoot(t)
	gate := filepath.Join(t.TempDir(), "go")
	c := startUnderTest(t, fmt.Sprintf(`
[services.flood]
command = ["sh", "-c", "echo ready; while [ ! -e %s ]; do sleep 0.05; done; seq 1 200000; exec sleep 300"]
`, gate))
	c.waitState(t, "flood", "running")
	cmd := exec.Command(tendBin, "ctl", "--socket", c.socket, "logs", "-f", "flood")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	r := bufio.NewReader(stdout)
	if first, err := r.ReadString('\n'); err != nil || !strings.Contains(first, "flood | ready") {
		t.Fatalf("first line %q (%v)", first, err)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil { // the stream is up: flood
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the reader stalls while the lines come
	rest, _ := io.ReadAll(r)
	code := exitCode(cmd.Wait())
	got := strings.Count(string(rest), "\n")
	t.Logf("the reader got %d of 200,000 lines; exit %d; stderr %q", got, code, errb.String())
	want := "tend ctl: dropped: 65537 lines behind (the reader was too slow)\n" // followLines and the one that did not fit
	if code != 3 || errb.String() != want {
		t.Fatalf("after %d of 200,000 lines: exit %d, stderr %q; want exit 3 and %q", got, code, errb.String(), want)
	}
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatal("shutdown failed")
	}
	c.wait(t, 15*time.Second)
}

// TestLogsFollowEndsCleanlyWhenTendExits: a followed stream that tend ends
// by exiting is exit 0 without a word, for logs and events alike.
func TestLogsFollowEndsCleanlyWhenTendExits(t *testing.T) {
	needRoot(t)
	c := startUnderTest(t, `
[services.talker]
command = ["sh", "-c", "while :; do echo tick; sleep 0.1; done"]
`)
	c.waitState(t, "talker", "running")
	type follower struct {
		args      []string
		out, errb lockedBuffer
		done      chan int
	}
	var fs []*follower
	for _, args := range [][]string{{"logs", "-f", "talker"}, {"events"}} {
		f := &follower{args: args, done: make(chan int, 1)}
		cmd := exec.Command(tendBin, append([]string{"ctl", "--socket", c.socket}, args...)...)
		cmd.Stdout, cmd.Stderr = &f.out, &f.errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		go func() { f.done <- exitCode(cmd.Wait()) }()
		fs = append(fs, f)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(fs[0].out.String(), "talker | tick"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("logs -f: %q", fs[0].out.String())
		}
	}
	time.Sleep(200 * time.Millisecond) // events is subscribed too
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatal("shutdown failed")
	}
	for _, f := range fs {
		select {
		case code := <-f.done:
			if code != 0 || f.errb.String() != "" {
				t.Errorf("%v when tend exits: exit %d, stderr %q", f.args, code, f.errb.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%v did not end with tend", f.args)
		}
	}
	if !strings.Contains(fs[1].out.String(), "shutdown: began") {
		t.Errorf("events: %q", fs[1].out.String())
	}
	c.wait(t, 15*time.Second)
}

// TestRemovedServiceLogsStayGone: a service removed by a reload is
// forgotten, with its ring, although another process still holds its old
// run's pipe and writes into it; added again, its new run's lines are
// kept, and still none of the old run's.
func TestRemovedServiceLogsStayGone(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "svc.pid")
	svc := fmt.Sprintf(`
[services.svc]
command = ["sh", "-c", "echo $$ > %s; echo svc run; exec sleep 300"]
`, pidFile)
	// holder opens svc's stdout pipe through /proc, from outside svc's
	// process tree, and writes into it from then on.
	holder := fmt.Sprintf(`
[services.holder]
command = ["sh", "-c", "while [ ! -s %[1]s ]; do sleep 0.05; done; exec 3>/proc/$(cat %[1]s)/fd/1; rm %[1]s; while :; do echo held >&3; sleep 0.05; done"]
`, pidFile)
	c := startUnderTest(t, svc+holder)
	logs := func(args ...string) string {
		t.Helper()
		out, errOut, code := c.ctl(t, append([]string{"logs"}, args...)...)
		if code != 0 {
			t.Fatalf("logs %v: exit %d: %s", args, code, errOut)
		}
		return out
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs("svc"), "svc | held"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("holder never wrote into svc's pipe:\n%s\n%s", logs(), c.errb.String())
		}
	}
	c.reconfigure(t, holder)
	if _, errOut, code := c.ctl(t, "reload"); code != 0 {
		t.Fatalf("reload: %s", errOut)
	}
	for deadline := time.Now().Add(10 * time.Second); c.status(t)["svc"] != nil; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("svc never forgotten:\n%s", c.errb.String())
		}
	}
	c.waitOutput(t, "svc | held", 5*time.Second)
	time.Sleep(500 * time.Millisecond) // ten more lines into the old pipe
	if out := logs(); strings.Contains(out, " svc | ") {
		t.Fatalf("a forgotten service's lines are kept again:\n%s", tail(out))
	}
	c.reconfigure(t, svc+holder)
	if _, errOut, code := c.ctl(t, "reload"); code != 0 {
		t.Fatalf("reload: %s", errOut)
	}
	c.waitState(t, "svc", "running")
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs("svc"), "svc | svc run"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the new run's line is not kept:\n%s", logs())
		}
	}
	time.Sleep(300 * time.Millisecond)
	if out := logs("svc"); strings.Count(out, "\n") != 1 || strings.Contains(out, "held") {
		t.Fatalf("svc added again keeps:\n%s\nwant its new run's line only", out)
	}
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatal("shutdown failed")
	}
	c.wait(t, 15*time.Second)
}

// TestStatusEscapedInTendsLog: a service's STATUS= with terminal escapes
// is written escaped into tend's text log.
func TestStatusEscapedInTendsLog(t *testing.T) {
	needRoot(t)
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3 to send STATUS=")
	}
	script := filepath.Join(t.TempDir(), "notify.py")
	if err := os.WriteFile(script, []byte(`import os, socket, time
a = os.environ["NOTIFY_SOCKET"]
if a.startswith("@"):
    a = "\0" + a[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=\x1b]0;TITLE\x07\x1b[2Jwiped\n", a)
time.sleep(300)
`), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startUnderTest(t, fmt.Sprintf(`
[services.app]
command = [%q, %q]
ready = { notify = true }
`, python, script))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.errb.String(), "wiped") {
		if time.Now().After(deadline) {
			t.Fatalf("no status logged:\n%s", c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	log := c.errb.String()
	if strings.Contains(log, "\x1b") || !strings.Contains(log, `app status: \x1b]0;TITLE\a\x1b[2Jwiped`) {
		t.Fatalf("the status in tend's log:\n%q", tail(log))
	}
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatal("shutdown failed")
	}
	c.wait(t, 15*time.Second)
}

// TestCtlLogsEscapesOnATerminal: what a service prints reaches a terminal
// escaped, a pipe as it is, and a terminal with --raw as it is.
func TestCtlLogsEscapesOnATerminal(t *testing.T) {
	needRoot(t)
	c := startControlled(t, `
[services.title]
command = ["sh", "-c", "printf '\\033]0;TITLE\\a\\033[2Jafter\\n'; exec sleep 300"]
`)
	c.waitOutput(t, "after", 5*time.Second)
	raw := "title | \x1b]0;TITLE\a\x1b[2Jafter\n"
	if out, _, code := c.ctl(t, "logs", "title"); code != 0 || !strings.HasSuffix(out, raw) {
		t.Fatalf("into a pipe: exit %d %q", code, out)
	}
	for _, args := range [][]string{{"logs", "title"}, {"logs", "--raw", "title"}} {
		got := ctlOnTerminal(t, c, args...)
		want := `title | \x1b]0;TITLE\a\x1b[2Jafter` + "\n"
		if args[1] == "--raw" {
			want = raw
		}
		if !strings.HasSuffix(got, want) {
			t.Fatalf("%v on a terminal: %q, want it to end in %q", args, got, want)
		}
	}
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatal("shutdown failed")
	}
	c.wait(t, 15*time.Second)
}

// ctlOnTerminal runs tend ctl with its stdout on a pseudo-terminal (in
// raw mode: read as written) and returns what it wrote.
func ctlOnTerminal(t *testing.T, c *controlled, args ...string) string {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("no pseudo-terminals:", err)
	}
	defer m.Close()
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(int(tty.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tendBin, append([]string{"ctl", "--socket", c.socket}, args...)...)
	cmd.Stdout = tty
	err = cmd.Run()
	tty.Close()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	var out []byte
	buf := make([]byte, 4096)
	for { // the terminal's other end reads EIO once nothing holds it open
		k, err := m.Read(buf)
		out = append(out, buf[:k]...)
		if err != nil {
			break
		}
	}
	return string(out)
}
