package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// forwardable is every signal tend must pass on: all catchable ones but
// SIGCHLD, SIGURG and SIGPIPE, real-time signals included; SIGPROF and
// signals 32-34 never reach a Go program's os/signal (README, "Signals").
func forwardable() []string {
	var list []string
	for n := 1; n <= 64; n++ {
		switch syscall.Signal(n) {
		case syscall.SIGKILL, syscall.SIGSTOP, syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPIPE,
			syscall.SIGPROF, 32, 33, 34:
			continue
		}
		list = append(list, strconv.Itoa(n))
	}
	return list
}

// TestOrphansAreReaped runs as PID 1 only: the census of zombies reads the
// whole PID namespace. TestSubreaperReapsOrphans covers tend as a subreaper.
func TestOrphansAreReaped(t *testing.T) {
	needRoot(t)
	res := run{pid1: true, args: []string{"-w", "--", progBin, "orphans", "1000"}, timeout: 60 * time.Second}.do(t)
	if res.code != 0 || !strings.Contains(res.stdout, "zombies=0 others=0") {
		t.Fatalf("exit %d, stdout %q, stderr tail %q", res.code, res.stdout, tail(res.stderr))
	}
	// -w logs each process tend reaped but did not start: all 1,000
	// orphans, and nothing else.
	if n := strings.Count(res.stderr, "reaped zombie process"); n != 1000 {
		t.Fatalf("tend reaped %d orphans, want 1000", n)
	}
}

func TestSubreaperReapsOrphans(t *testing.T) {
	needRoot(t)
	// Not PID 1: the sh's background child is re-parented to tend only
	// because tend registered as a subreaper.
	res := run{args: []string{"-v", "-w", "--", "sh", "-c", `(sh -c "sleep 0.2; exit 7" &); sleep 1`}}.start(t)
	out := res.wait(t, 10*time.Second)
	if out.code != 0 {
		t.Fatalf("exit %d: %s", out.code, out.stderr)
	}
	if !strings.Contains(out.stderr, "registered as a child subreaper") {
		t.Errorf("no subreaper notice at -v: %s", out.stderr)
	}
	if !strings.Contains(out.stderr, "exit code 7") {
		t.Errorf("the orphan was not reaped by tend: %s", out.stderr)
	}
}

func TestEverySignalIsForwarded(t *testing.T) {
	needRoot(t)
	for _, pid1 := range []bool{true, false} {
		t.Run(fmt.Sprintf("pid1=%v", pid1), func(t *testing.T) {
			args := append([]string{"--", progBin, "selfsignal"}, forwardable()...)
			res := run{pid1: pid1, args: args, timeout: 60 * time.Second}.do(t)
			if res.code != 0 || strings.Contains(res.stdout, "missing") {
				t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
			}
			if n := strings.Count(res.stdout, "ok "); n != len(forwardable()) {
				t.Fatalf("%d signals came back, want %d:\n%s", n, len(forwardable()), res.stdout)
			}
		})
	}
}

func TestSignalsFromOutside(t *testing.T) {
	needRoot(t)
	// SIGTERM from the container runtime ends the main program, and tend
	// exits with its status; SIGPIPE and a kill-sent SIGSEGV/SIGBUS do not
	// end tend.
	file := filepath.Join(t.TempDir(), "got")
	s := run{pid1: true, args: []string{"--", progBin, "waitsig", file, "11", "7", "15"}}.start(t)
	s.waitOutput(t, "ready", 10*time.Second)
	pid := s.tendPid(t, true)
	for _, sig := range []syscall.Signal{syscall.SIGPIPE, syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGTERM} {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // keep the order observable
	}
	res := s.wait(t, 10*time.Second)
	if res.code != 0 {
		t.Fatalf("exit %d, want 0 (the program exits by itself on TERM)\n%s", res.code, res.stderr)
	}
	got, _ := os.ReadFile(file)
	if string(got) != "11\n7\n15\n" {
		t.Fatalf("the program received %q, want SEGV, BUS, TERM and no PIPE", got)
	}
}

func TestExitCodes(t *testing.T) {
	needRoot(t)
	cases := []struct {
		name   string
		args   []string
		want   int
		stderr string
	}{
		{"zero", []string{"sh", "-c", "exit 0"}, 0, ""},
		{"one", []string{"sh", "-c", "exit 1"}, 1, ""},
		{"42", []string{"sh", "-c", "exit 42"}, 42, ""},
		{"255", []string{"sh", "-c", "exit 255"}, 255, ""},
		{"killed by TERM", []string{"sh", "-c", "kill -TERM $$"}, 143, ""},
		{"killed by KILL", []string{"sh", "-c", "kill -KILL $$"}, 137, ""},
		{"-e remaps", []string{"-e", "42", "-e143", "sh", "-c", "exit 42"}, 0, ""},
		{"-e remaps a signal death", []string{"-e", "143", "--", "sh", "-c", "kill -TERM $$"}, 0, ""},
		{"-e leaves others", []string{"-e", "42", "sh", "-c", "exit 41"}, 41, ""},
		{"not found", []string{"no-such-program-anywhere"}, 127, "not found"},
		{"not executable", []string{"/etc/passwd"}, 126, "permission denied"},
		{"a directory", []string{"/"}, 126, "directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := run{pid1: true, args: c.args}.do(t)
			if res.code != c.want {
				t.Fatalf("exit %d, want %d\n%s", res.code, c.want, res.stderr)
			}
			if c.stderr != "" && (!strings.Contains(res.stderr, c.stderr) || strings.Count(strings.TrimSpace(res.stderr), "\n") != 0) {
				t.Fatalf("want one line containing %q, got %q", c.stderr, res.stderr)
			}
		})
	}
}

func TestBadCommandLines(t *testing.T) {
	cases := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"-x", "true"}, nil, "unknown option -x"},
		{[]string{"--frobnicate", "true"}, nil, "unknown option --frobnicate"},
		{[]string{}, nil, "no program to run"},
		{[]string{"-v"}, nil, "no program to run"},
		{[]string{"-e", "256", "true"}, nil, "-e \"256\""},
		{[]string{"-e", "x", "true"}, nil, "-e \"x\""},
		{[]string{"-e"}, nil, "option -e needs a value"},
		{[]string{"-r", "15", "true"}, nil, "must be FROM:TO"},
		{[]string{"-r", "15:NOPE", "true"}, nil, "unknown signal \"NOPE\""},
		{[]string{"-r", "99:1", "true"}, nil, "out of range"},
		{[]string{"-p", "SIGWHAT", "true"}, nil, "unknown signal"},
		{[]string{"true"}, []string{"TEND_GRACE=soon"}, "TEND_GRACE"},
		{[]string{"true"}, []string{"TINI_VERBOSITY=loud"}, "TINI_VERBOSITY"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			res := run{args: c.args, env: c.env}.do(t)
			lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
			if res.code != 2 || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Fatalf("exit %d, stderr %q; want exit 2 and one line containing %q", res.code, res.stderr, c.want)
			}
		})
	}
}

func TestOptionParsingStopsAtProgram(t *testing.T) {
	// "-e" after the program's name belongs to the program.
	res := run{args: []string{"sh", "-c", "echo $0 $1", "-e", "9"}}.do(t)
	if res.code != 0 || strings.TrimSpace(res.stdout) != "-e 9" {
		t.Fatalf("exit %d, stdout %q", res.code, res.stdout)
	}
}

func TestKillGroupReachesGrandchild(t *testing.T) {
	needRoot(t)
	for _, group := range []bool{true, false} {
		t.Run(fmt.Sprintf("g=%v", group), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "got")
			// The grandchild shares the main program's process group; the
			// shell in between waits and does not pass signals on.
			// sh passes USR1 on as USR2 by itself, so the grandchild always
			// ends; it hears USR1 only through -g.
			script := fmt.Sprintf("%s waitsig %s 10 12 & pid=$!; trap 'kill -USR2 $pid' USR1; wait $pid; wait $pid", progBin, file)
			args := []string{"--", "sh", "-c", script}
			if group {
				args = append([]string{"-g"}, args...)
			}
			s := run{pid1: true, args: args}.start(t)
			s.waitOutput(t, "ready", 10*time.Second)
			if err := syscall.Kill(s.tendPid(t, true), syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
			want := "12\n"
			if group {
				want = "10\n12\n"
			}
			res := s.wait(t, 10*time.Second)
			got, _ := os.ReadFile(file)
			if res.code != 0 || string(got) != want {
				t.Fatalf("exit %d, grandchild got %q, want %q", res.code, got, want)
			}
		})
	}
}

func TestRewriteAndDrop(t *testing.T) {
	needRoot(t)
	file := filepath.Join(t.TempDir(), "got")
	// USR1 becomes USR2, HUP is dropped, INT passes as is and ends the run.
	s := run{pid1: true, args: []string{"-r", "10:12", "--rewrite=HUP:0", "--", progBin, "waitsig", file, "1", "10", "12", "2"}}.start(t)
	s.waitOutput(t, "ready", 10*time.Second)
	pid := s.tendPid(t, true)
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGINT} {
		_ = syscall.Kill(pid, sig)
		time.Sleep(50 * time.Millisecond)
	}
	res := s.wait(t, 10*time.Second)
	got, _ := os.ReadFile(file)
	if res.code != 0 || string(got) != "12\n2\n" {
		t.Fatalf("exit %d, the program received %q, want USR2 then INT", res.code, got)
	}
}

func TestLeftoversAreTerminated(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	polite, stubborn := filepath.Join(dir, "polite"), filepath.Join(dir, "stubborn")
	// The main program leaves two processes behind: one that exits on
	// SIGTERM and one that ignores it and must be SIGKILLed after the grace.
	script := fmt.Sprintf("%[1]s trap-term %[2]s & %[1]s trap-term %[3]s ignore & while [ ! -s %[2]s ] || [ ! -s %[3]s ]; do sleep 0.05; done", progBin, polite, stubborn)
	res := run{env: []string{"TEND_GRACE=500ms"}, args: []string{"-v", "--", "sh", "-c", script}}.do(t)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for _, f := range []string{polite, stubborn} {
		b, _ := os.ReadFile(f)
		lines := strings.Fields(string(b))
		if len(lines) != 2 || lines[1] != "term" {
			t.Fatalf("%s: %q, want its pid and a SIGTERM", filepath.Base(f), b)
		}
		pid, _ := strconv.Atoi(lines[0])
		if alive(pid) {
			t.Fatalf("%s (pid %d) is still running after tend exited", filepath.Base(f), pid)
		}
	}
	if res.elapsed < 500*time.Millisecond || !strings.Contains(res.stderr, "SIGKILL") {
		t.Fatalf("the stubborn process was not given the grace then killed (%s): %s", res.elapsed, res.stderr)
	}
}

func TestChildrenStartClean(t *testing.T) {
	needRoot(t)
	// A parent that ignores SIGPIPE and SIGINT and blocks SIGUSR1 starts
	// tend; the program tend starts must see none of that, and no Go
	// runtime variables in its environment.
	res := run{args: []string{progBin, "exec-masked", tendBin, "--", progBin, "status"}}.do(t)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for _, want := range []string{"SigBlk: 0000000000000000", "SigIgn: 0000000000000000"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("child status lacks %q:\n%s", want, res.stdout)
		}
	}
	env := run{args: []string{"env"}}.do(t)
	cmd := exec.Command("env")
	want, _ := cmd.Output()
	if strings.Join(sortedLines(env.stdout), "\n") != strings.Join(sortedLines(string(want)), "\n") {
		t.Errorf("tend changed the environment:\n%s\nwant:\n%s", env.stdout, want)
	}
}

func TestOwnProcessGroupWithoutTerminal(t *testing.T) {
	res := run{args: []string{progBin, "status"}}.do(t)
	var pid, pgid int
	for _, line := range strings.Split(res.stdout, "\n") {
		fmt.Sscanf(line, "pid=%d pgid=%d", &pid, &pgid)
	}
	if pid == 0 || pid != pgid {
		t.Fatalf("the main program is not its own group leader: %q", res.stdout)
	}
}

func TestTerminalForegroundGoesToProgram(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("script"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs script from util-linux")
		}
		t.Skip("needs script from util-linux")
	}
	// script(1) gives tend a terminal as stdin and controlling terminal.
	cmd := exec.Command("script", "-qec", tendBin+" -- "+progBin+" status", "/dev/null")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var pid, pgid, fg int
	for _, line := range strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n") {
		fmt.Sscanf(line, "pid=%d pgid=%d", &pid, &pgid)
		fmt.Sscanf(line, "tty-foreground=%d", &fg)
	}
	if pid == 0 || pgid != pid || fg != pgid {
		t.Fatalf("want the program's own group in the foreground, got pid=%d pgid=%d foreground=%d\n%s", pid, pgid, fg, out)
	}
}

func TestNoOSExecInBinary(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "os/exec" {
			t.Fatal("the tend binary imports os/exec, whose Wait races with the reaper")
		}
	}
}

func TestStaticBinary(t *testing.T) {
	b, err := os.ReadFile(tendBin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "ld-linux") {
		t.Fatal("tend is dynamically linked")
	}
	if fi, _ := os.Stat(tendBin); fi.Size() > 3<<20 {
		t.Logf("binary is %d bytes, over the 3 MiB target", fi.Size())
	}
}

func sortedLines(s string) []string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(lines)
	return lines
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

func TestSurvivesSignalsItCannotForward(t *testing.T) {
	needRoot(t)
	// SIGPROF and 32-34 are kept by the Go runtime; sent to a tend that is
	// not PID 1 (where the kernel does not protect it) they must not kill it.
	file := filepath.Join(t.TempDir(), "got")
	s := run{args: []string{"--", progBin, "waitsig", file, "10"}}.start(t)
	s.waitOutput(t, "ready", 10*time.Second)
	pid := s.tendPid(t, false)
	for _, sig := range []syscall.Signal{syscall.SIGPROF, 32, 33, 34, syscall.SIGPIPE, syscall.SIGUSR1} {
		if err := syscall.Kill(pid, sig); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	res := s.wait(t, 10*time.Second)
	got, _ := os.ReadFile(file)
	if res.code != 0 || string(got) != "10\n" {
		t.Fatalf("exit %d (tend killed?), program got %q", res.code, got)
	}
}

func TestPanicBecomesOrderlyShutdown(t *testing.T) {
	needRoot(t)
	file := filepath.Join(t.TempDir(), "got")
	for _, mode := range []string{"wrapper", "supervisor"} {
		t.Run(mode, func(t *testing.T) {
			os.Remove(file)
			args := []string{"--", progBin, "trap-term", file}
			if mode == "supervisor" {
				cfg := writeConfig(t, fmt.Sprintf(`
[services.svc]
command = [%q, "trap-term", %q]
`, progBin, file))
				args = []string{"--config", cfg}
			}
			res := run{pid1: true, bin: panicBin, args: args}.do(t)
			if res.code != 1 || !strings.Contains(res.stderr, "injected panic") || strings.Contains(res.stderr, "goroutine 1 [") {
				t.Fatalf("exit %d, want 1 with the panic logged and no crash\n%s", res.code, res.stderr)
			}
			b, _ := os.ReadFile(file)
			if !strings.Contains(string(b), "term") {
				t.Fatalf("the program was not stopped with SIGTERM: %q", b)
			}
		})
	}
}

func TestParentDeathSignal(t *testing.T) {
	needRoot(t)
	file := filepath.Join(t.TempDir(), "got")
	// tend's parent (this sh) exits after half a second: tend is sent
	// SIGUSR1 (-p), which it forwards like any signal, and the program
	// ends on it.
	script := fmt.Sprintf("%s -p SIGUSR1 -- %s waitsig %s 10 & sleep 0.5", tendBin, progBin, file)
	if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(file); string(b) == "10\n" {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(file)
			t.Fatalf("the program never got the parent-death signal: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
