package integration

// A service is its whole process tree (SPEC section 6): the group SIGKILL
// outlives the leader, a process that left the group is still stopped, and
// two generations never overlap. Plus two shutdown and resource bugs met on
// the way. Each test here failed on f3f5e78.
//
// These tests run binUnderTest (TEND_BIN_UNDER_TEST, to show them failing on
// an older build).

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTree is startControlled with treeBin; stdout, if not nil, is the
// file tend's stdout is connected to instead of a buffer.
func startTree(t *testing.T, body string, stdout *os.File) *controlled {
	t.Helper()
	return startControlledWith(t, body, func(cfg string) run {
		return run{pid1: true, bin: binUnderTest(), args: []string{"--config", cfg}, stdout: stdout}
	})
}

// treeMarker is a marker unique to the test (and a role in it).
func treeMarker(t *testing.T, role string) string {
	return "tend-tree-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + role
}

// stubbornLoop is a shell loop that ignores SIGTERM, as a script body.
const stubbornLoop = `trap "" TERM; while :; do sleep 0.1; done`

// waitProcesses waits until exactly n processes carry marker.
func waitProcesses(t *testing.T, c *controlled, marker string, n int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for processesWith(marker) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d processes with %s, want %d\n%s", processesWith(marker), marker, n, c.errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pidsWith lists the live processes whose argv ends in marker.
func pidsWith(marker string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid := dirPid(e.Name())
		if pid < 0 {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) > 0 && args[len(args)-1] == marker && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// generationsWith is pidsWith without the shell's own forks: a worker
// shell forks a copy of itself (same command line) for each command it
// runs, which is the same generation; only a marked process whose parent
// is not marked stands for one.
func generationsWith(marker string) []int {
	pids := pidsWith(marker)
	marked := map[string]bool{}
	for _, pid := range pids {
		marked[strconv.Itoa(pid)] = true
	}
	var roots []int
	for _, pid := range pids {
		if !marked[statField(pid, 4)] {
			roots = append(roots, pid)
		}
	}
	return roots
}

// statField is field n (1-based, as in proc(5)) of /proc/pid/stat.
func statField(pid, n int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "?"
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if n-3 < 0 || n-3 >= len(f) {
		return "?"
	}
	return f[n-3]
}

// pgidOf is pid's process group as seen from here ("?" if gone).
func pgidOf(pid int) string { return statField(pid, 5) }

// stopUntilGone sends `tend ctl stop name` and watches the state and the
// processes carrying markers together: the service must not be `stopped`
// while one of them lives, and all of them must be gone (and the state
// `stopped`) within limit. It reports a breach with t.Errorf and returns
// false, so that a test may go on to see how tend ends.
func stopUntilGone(t *testing.T, c *controlled, name string, limit time.Duration, markers ...string) bool {
	t.Helper()
	living := func() []string {
		var l []string
		for _, m := range markers {
			if n := processesWith(m); n > 0 {
				l = append(l, fmt.Sprintf("%d×%s", n, m))
			}
		}
		return l
	}
	begun := time.Now()
	if out, errOut, code := c.ctl(t, "stop", name); code != 0 {
		t.Errorf("stop %s: exit %d: %s%s", name, code, out, errOut)
		return false
	}
	for {
		// The state first, then the processes: one alive now was alive
		// when the state was read, as nothing starts them again.
		s := c.status(t)[name]
		left := living()
		elapsed := time.Since(begun).Round(time.Millisecond)
		if s != nil && s["state"] == "stopped" {
			if len(left) > 0 {
				t.Errorf("%s is stopped %s after the stop while its processes live: %v\n%s", name, elapsed, left, c.errb.String())
				return false
			}
			t.Logf("%s stopped, with every process gone, %s after the stop", name, elapsed)
			return true
		}
		if time.Since(begun) > limit {
			t.Errorf("%s after the stop: state %v, processes left %v\n%s", elapsed, s["state"], left, c.errb.String())
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderAndWorker is a service whose main process (a shell that exits on
// SIGTERM) waits for a worker that ignores SIGTERM, in the same group.
func leaderAndWorker(leader, worker string) string {
	return fmt.Sprintf("[services.web]\ncommand = [\"sh\", \"-c\", %q, %q]\nstop_timeout = \"2s\"\n",
		"sh -c '"+stubbornLoop+"' "+worker+" & wait", leader)
}

// The leader exits on the stop signal; the worker ignores it and must get
// the group's SIGKILL after stop_timeout all the same, before `stopped`.
func TestTreeStopWaitsForTheWholeGroup(t *testing.T) {
	needRoot(t)
	leader, worker := treeMarker(t, "leader"), treeMarker(t, "worker")
	c := startTree(t, leaderAndWorker(leader, worker), nil)
	c.waitState(t, "web", "running")
	waitProcesses(t, c, worker, 1, 5*time.Second)
	// stop_timeout 2s, then SIGKILL: gone well within 2s more.
	stopUntilGone(t, c, "web", 4*time.Second, worker, leader)
}

// A restart stops the old generation first: its worker, which ignores
// SIGTERM, is SIGKILLed after stop_timeout before the new one starts.
func TestTreeRestartNeverRunsTwoGenerations(t *testing.T) {
	needRoot(t)
	leader, worker := treeMarker(t, "leader"), treeMarker(t, "worker")
	c := startTree(t, leaderAndWorker(leader, worker), nil)
	c.waitState(t, "web", "running")
	waitProcesses(t, c, worker, 1, 5*time.Second)
	old := generationsWith(worker)

	if out, errOut, code := c.ctl(t, "restart", "web"); code != 0 {
		t.Fatalf("restart: exit %d: %s%s", code, out, errOut)
	}
	begun := time.Now()
	most := 0
	for time.Since(begun) < 4*time.Second {
		pids := generationsWith(worker)
		if len(pids) > most {
			most = len(pids)
		}
		if len(pids) > 1 {
			t.Fatalf("%s after the restart two generations run: workers %v (the old one was %v)\n%s",
				time.Since(begun).Round(time.Millisecond), pids, old, c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// And the restart did happen: one new worker, the old one gone.
	c.waitState(t, "web", "running")
	waitProcesses(t, c, worker, 1, 5*time.Second)
	if now := generationsWith(worker); len(now) == 1 && len(old) == 1 && now[0] == old[0] {
		t.Fatalf("the old worker %d still runs after the restart\n%s", old[0], c.errb.String())
	}
	t.Logf("at most %d worker at once in the 4s after the restart", most)
}

// A child of the service puts itself into a group of its own (same
// session) and ignores SIGTERM: it is still the service's, so the stop
// kills it before `stopped`, and tend then ends on SIGTERM in time.
func TestTreeChildThatLeftTheGroupIsStopped(t *testing.T) {
	needRoot(t)
	leader, child := treeMarker(t, "leader"), treeMarker(t, "child")
	script := filepath.Join(t.TempDir(), "leave.sh")
	body := fmt.Sprintf("perl -e 'setpgrp(0, 0) or die \"setpgrp: $!\"; exec @ARGV or die \"exec: $!\"' sh -c '%s' %s &\nwait\n", stubbornLoop, child)
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startTree(t, fmt.Sprintf("[services.leaver]\ncommand = [\"sh\", %q, %q]\nstop_timeout = \"2s\"\n", script, leader), nil)
	c.waitState(t, "leaver", "running")
	waitProcesses(t, c, child, 1, 5*time.Second)
	waitProcesses(t, c, leader, 1, 5*time.Second)
	lp, cp := pidsWith(leader)[0], pidsWith(child)[0]
	if pgidOf(lp) == pgidOf(cp) {
		t.Fatalf("the child did not leave the group: leader %d and child %d both in %s", lp, cp, pgidOf(lp))
	}
	t.Logf("leader %d in group %s, child %d in group %s (session %s and %s)", lp, pgidOf(lp), cp, pgidOf(cp), statField(lp, 6), statField(cp, 6))

	stopUntilGone(t, c, "leaver", 4*time.Second, child, leader)

	begun := time.Now()
	if err := syscall.Kill(c.tendPid(t, true), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := c.wait(t, 9*time.Second+3*time.Second) // shutdown_timeout + a margin
	t.Logf("tend exited %d, %s after SIGTERM", res.code, time.Since(begun).Round(time.Millisecond))
	if n := processesWith(child) + processesWith(leader); n != 0 {
		t.Fatalf("%d processes of the service outlived tend", n)
	}
}

// The main process itself joins another group of its session (that of a
// child it made a group leader) before the stop. Once services are session
// leaders the move fails with EPERM and it stays in its group; either way
// the stop ends it and its child, and tend ends on SIGTERM in time.
func TestTreeLeaderLeavingTheGroupStillEnds(t *testing.T) {
	needRoot(t)
	start, mainM, childM := treeMarker(t, "start"), treeMarker(t, "main"), treeMarker(t, "child")
	script := filepath.Join(t.TempDir(), "leave.pl")
	body := fmt.Sprintf(`$| = 1;
my $d = fork();
die "fork: $!" unless defined $d;
if ($d == 0) {
	setpgrp(0, 0);
	exec "sh", "-c", '%[1]s', "%[2]s";
	die "exec: $!";
}
setpgrp($d, $d); # whichever of the two calls comes first makes the group
select(undef, undef, undef, 0.3);
if (setpgrp(0, $d)) { print "left my group for group $d\n" } else { print "stayed in my group: $!\n" }
exec "sh", "-c", '%[1]s', "%[3]s";
die "exec: $!";
`, stubbornLoop, childM, mainM)
	if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	c := startTree(t, fmt.Sprintf("[services.leaver]\ncommand = [\"perl\", %q, %q]\nstop_timeout = \"2s\"\n", script, start), nil)
	c.waitState(t, "leaver", "running")
	c.waitOutput(t, "leaver | ", 5*time.Second)
	waitProcesses(t, c, mainM, 1, 5*time.Second)
	waitProcesses(t, c, childM, 1, 5*time.Second)
	mp, cp := pidsWith(mainM)[0], pidsWith(childM)[0]
	t.Logf("%s; main %d in group %s session %s, child %d in group %s session %s",
		strings.TrimSpace(c.out.String()), mp, pgidOf(mp), statField(mp, 6), cp, pgidOf(cp), statField(cp, 6))

	stopUntilGone(t, c, "leaver", 4*time.Second, mainM, childM)

	begun := time.Now()
	if err := syscall.Kill(c.tendPid(t, true), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := c.wait(t, 9*time.Second+3*time.Second) // shutdown_timeout + a margin
	t.Logf("tend exited %d, %s after SIGTERM", res.code, time.Since(begun).Round(time.Millisecond))
	if n := processesWith(mainM) + processesWith(childM); n != 0 {
		t.Fatalf("%d processes of the service outlived tend", n)
	}
}

// A main program that cannot be started ends the wait at once: exit 127
// well inside shutdown_timeout (9s), the service stopped with its stop
// signal, not SIGKILLed when the budget ran out.
func TestTreeMainThatCannotStartEndsAtOnce(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	mark := filepath.Join(dir, "svc.pid")
	cfg := filepath.Join(dir, "tend.toml")
	// The service is ready once its SIGTERM handler is in place (trap-term
	// writes the file after installing it), so the main program, and the
	// shutdown, come after that.
	body := fmt.Sprintf(`control_socket = ""
[services.svc]
command = [%q, "trap-term", %q]
[services.svc.ready]
file = %q
interval = "10ms"
`, progBin, mark, mark)
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	res := run{pid1: true, bin: binUnderTest(), args: []string{"--config", cfg, "--", "/no/such/program"}}.do(t)
	t.Logf("exit %d after %s", res.code, res.elapsed.Round(time.Millisecond))
	if res.code != 127 {
		t.Errorf("exit %d, want 127\n%s", res.code, res.stderr)
	}
	if res.elapsed >= 4*time.Second {
		t.Errorf("tend took %s to give up on a main program that cannot start (shutdown_timeout is 9s)\n%s", res.elapsed.Round(time.Millisecond), res.stderr)
	}
	got, err := os.ReadFile(mark)
	if err != nil {
		t.Fatalf("the service never started: %v\n%s", err, res.stderr)
	}
	if !strings.Contains(string(got), "term") {
		t.Errorf("the service never got SIGTERM (file: %q)\n%s", got, res.stderr)
	}
}

// procStatus is a line of /proc/pid/status, such as VmRSS or Threads.
func procStatus(pid int, key string) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == key {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	return "?"
}

func openFds(pid int) int {
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// tend's stdout is a pipe nobody reads; a service that prints a line and
// exits restarts every 10ms. Its output may stall, but each run must not
// leave a descriptor (and a goroutine) behind.
func TestTreeStalledStdoutLeaksNothing(t *testing.T) {
	needRoot(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close() // open, never read, until the test ends
	c := startTree(t, `
[services.chatty]
command = ["sh", "-c", "printf '%0200d\\n' 0; exit 1"]
min_uptime = "1ms"
backoff = { type = "fixed", delay = "10ms" }
crash_loop = { max_restarts = 1000000, window = "1s", backoff = "10ms" }
`, w)
	w.Close() // tend has it now
	pid := c.tendPid(t, true)
	begun := time.Now()

	type sample struct {
		at       time.Duration
		fds      int
		restarts int
		threads  string
		rss      string
	}
	take := func() sample {
		s := sample{at: time.Since(begun).Round(100 * time.Millisecond), fds: openFds(pid), threads: procStatus(pid, "Threads"), rss: procStatus(pid, "VmRSS")}
		if st := c.status(t)["chatty"]; st != nil {
			if n, ok := st["restarts"].(float64); ok {
				s.restarts = int(n)
			}
		}
		t.Logf("at %s: %d fds, %d restarts, %s threads, VmRSS %s", s.at, s.fds, s.restarts, s.threads, s.rss)
		return s
	}
	var samples []sample
	for _, at := range []time.Duration{2, 4, 6, 8, 10} {
		time.Sleep(time.Until(begun.Add(at * time.Second)))
		samples = append(samples, take())
	}
	first, last := samples[0], samples[len(samples)-1]
	// 100 restarts are enough to see descriptors pile up (one per run
	// would be 100); a loaded machine managed 149 in 8 s, an idle one 500.
	if last.restarts-first.restarts < 100 {
		t.Fatalf("only %d restarts between %s and %s: the test proves nothing\n%s", last.restarts-first.restarts, first.at, last.at, c.errb.String())
	}
	if last.fds-first.fds > 20 {
		t.Fatalf("tend's open descriptors grew from %d to %d over %d restarts with its stdout stalled",
			first.fds, last.fds, last.restarts-first.restarts)
	}
}
