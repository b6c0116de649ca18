package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeConfig writes a config file for one test and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tend.toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// transitions lists "service:from→to" for every state change tend logged.
// transitionRE finds state changes in tend's text log format:
// "12:01:07 INFO  db running → restarting: …".
var transitionRE = regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d INFO  (\S+) (\S+) → (\S+):`)

func transitions(stderr string) []string {
	var out []string
	for _, m := range transitionRE.FindAllStringSubmatch(stderr, -1) {
		out = append(out, m[1]+":"+m[2]+"→"+m[3])
	}
	return out
}

func TestRestartPolicies(t *testing.T) {
	needRoot(t)
	cases := []struct {
		policy  string
		code    int
		starts  int    // runs of the service
		final   string // its last state
		tendRC  int
		oneshot bool
	}{
		{"always", 0, 3, "max-restarts-reached", 1, false},
		{"always", 1, 3, "max-restarts-reached", 1, false},
		{"unless-stopped", 0, 3, "max-restarts-reached", 1, false},
		{"on-failure", 1, 3, "max-restarts-reached", 1, false},
		{"on-failure", 0, 1, "stopped", 0, false},
		{"on-success", 0, 3, "max-restarts-reached", 1, false},
		{"on-success", 4, 1, "stopped", 1, false},
		{"never", 0, 1, "stopped", 0, false},
		{"never", 9, 1, "stopped", 1, false},
		{"on-failure", 2, 3, "max-restarts-reached", 1, true},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/exit%d/oneshot=%v", c.policy, c.code, c.oneshot), func(t *testing.T) {
			cfg := writeConfig(t, fmt.Sprintf(`
[services.svc]
command = "sh -c 'echo run; exit %d'"
restart = %q
oneshot = %v
max_restarts = 2
backoff = { delay = "20ms" }
`, c.code, c.policy, c.oneshot))
			res := run{pid1: true, args: []string{"--config", cfg}}.do(t)
			if n := strings.Count(res.stdout, "svc | run\n"); n != c.starts {
				t.Errorf("%d runs, want %d\n%s", n, c.starts, res.stdout)
			}
			tr := transitions(res.stderr)
			if len(tr) == 0 || !strings.HasSuffix(tr[len(tr)-1], "→"+c.final) {
				t.Errorf("transitions %v, want the last into %s", tr, c.final)
			}
			if res.code != c.tendRC {
				t.Errorf("tend exit %d, want %d\n%s", res.code, c.tendRC, res.stderr)
			}
		})
	}
}

// startTimes runs a service that logs the time of each start, and returns
// the gaps between consecutive starts.
func startGaps(t *testing.T, settings string, runs int) []time.Duration {
	t.Helper()
	file := filepath.Join(t.TempDir(), "starts")
	cfg := writeConfig(t, fmt.Sprintf(`
[services.svc]
command = ["sh", "-c", "date +%%s.%%N >> %s; exit 1"]
max_restarts = %d
%s
`, file, runs-1, settings))
	res := run{pid1: true, args: []string{"--config", cfg}, timeout: 60 * time.Second}.do(t)
	if res.code != 1 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	b, _ := os.ReadFile(file)
	var times []float64
	for _, f := range strings.Fields(string(b)) {
		v, _ := strconv.ParseFloat(f, 64)
		times = append(times, v)
	}
	if len(times) != runs {
		t.Fatalf("%d starts, want %d", len(times), runs)
	}
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gaps = append(gaps, time.Duration((times[i]-times[i-1])*float64(time.Second)))
	}
	return gaps
}

// Timings here have loose upper bounds: the machines are shared and noisy.
// The exact delays are the state machine's unit tests.
func TestFixedBackoff(t *testing.T) {
	needRoot(t)
	gaps := startGaps(t, `backoff = { type = "fixed", delay = "300ms" }`, 4)
	for _, g := range gaps {
		if g < 300*time.Millisecond || g > 3*time.Second {
			t.Fatalf("gaps %v, want each about 300ms", gaps)
		}
	}
}

func TestExponentialBackoffTiming(t *testing.T) {
	needRoot(t)
	gaps := startGaps(t, `backoff = { type = "exponential", initial_delay = "100ms", max_delay = "400ms", multiplier = 2.0 }
crash_loop = { max_restarts = 50 }`, 6)
	want := []time.Duration{100, 200, 400, 400, 400}
	for i, g := range gaps {
		if g < want[i]*time.Millisecond || g > want[i]*time.Millisecond+2*time.Second {
			t.Fatalf("gaps %v, want about %v ms", gaps, want)
		}
	}
}

func TestCrashLoopBackoff(t *testing.T) {
	needRoot(t)
	gaps := startGaps(t, `backoff = { delay = "10ms" }
crash_loop = { max_restarts = 3, window = "30s", backoff = "1500ms" }`, 5)
	// Restarts 1 and 2 come after 10ms; the 3rd inside the window trips the
	// 1.5s pause; the window is then clear, so the 4th is quick again.
	if gaps[0] > time.Second || gaps[1] > time.Second || gaps[2] < 1500*time.Millisecond || gaps[3] > time.Second {
		t.Fatalf("gaps %v, want short, short, >=1.5s, short", gaps)
	}
}

func TestUnexecutableCommandFollowsPolicy(t *testing.T) {
	needRoot(t)
	cfg := writeConfig(t, `
[services.ghost]
command = ["/no/such/program"]
max_restarts = 1
backoff = { delay = "10ms" }
`)
	res := run{pid1: true, args: []string{"--config", cfg}}.do(t)
	if res.code != 1 || strings.Count(res.stderr, "cannot start") != 2 || !strings.Contains(res.stderr, "exit code 127") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
}

func TestStopEscalationKillsGrandchild(t *testing.T) {
	needRoot(t)
	pidFile := filepath.Join(t.TempDir(), "grandchild")
	// Both the service and its grandchild ignore SIGTERM; stop_timeout
	// later, SIGKILL to the process group must take both.
	cfg := writeConfig(t, fmt.Sprintf(`
shutdown_timeout = "5s"
[services.stubborn]
command = ["sh", "-c", "trap '' TERM; %s trap-term %s ignore & wait; wait"]
stop_timeout = "300ms"
`, progBin, pidFile))
	s := run{args: []string{"--config", cfg}}.start(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, _ := os.ReadFile(pidFile); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("grandchild never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := os.ReadFile(pidFile)
	grandchild, _ := strconv.Atoi(strings.Fields(string(b))[0])
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
	res := s.wait(t, 10*time.Second)
	if !strings.Contains(res.stderr, "sending SIGKILL to its process group") {
		t.Fatalf("no escalation logged:\n%s", res.stderr)
	}
	// The group kill, not the final sweep of leftovers, ended the grandchild.
	if strings.Contains(res.stderr, "remaining process") {
		t.Fatalf("the grandchild survived the group SIGKILL:\n%s", res.stderr)
	}
	if alive(grandchild) {
		t.Fatalf("grandchild %d still alive", grandchild)
	}
	if res.code != 0 {
		t.Fatalf("a service stopped by tend counts as clean; exit %d", res.code)
	}
}

func TestReverseOrderShutdown(t *testing.T) {
	needRoot(t)
	// c depends on b, b on a; b2 sits beside b. Each prints when it gets
	// SIGTERM, after a pause, so the order is unmistakable.
	svc := func(name, deps string) string {
		return fmt.Sprintf(`
[services.%[1]s]
command = ["sh", "-c", "trap 'sleep 0.2; echo stop; exit 0' TERM; echo up; while :; do sleep 0.05; done"]
depends_on = [%[2]s]
`, name, deps)
	}
	cfg := writeConfig(t, svc("a", "")+svc("b", `"a"`)+svc("b2", `"a"`)+svc("c", `"b"`))
	s := run{pid1: true, args: []string{"--config", cfg}}.start(t)
	for _, name := range []string{"a", "b", "b2", "c"} {
		s.waitOutput(t, name+" | up", 10*time.Second)
	}
	syscall.Kill(s.tendPid(t, true), syscall.SIGTERM)
	res := s.wait(t, 15*time.Second)
	var stops []string
	for _, line := range strings.Split(res.stdout, "\n") {
		if name, ok := strings.CutSuffix(line, " | stop"); ok {
			stops = append(stops, name)
		}
	}
	order := strings.Join(stops, ",")
	if order != "c,b,b2,a" && order != "c,b2,b,a" {
		t.Fatalf("stop order %q, want c, then b and b2, then a\n%s", order, res.stderr)
	}
	if res.code != 0 {
		t.Fatalf("exit %d", res.code)
	}
	// Start order is the other way round. Without a readiness check a
	// service is ready once started, so the order is that of the starts.
	var started []string
	for _, tr := range transitions(res.stderr) {
		if name, ok := strings.CutSuffix(tr, ":idle→running"); ok {
			started = append(started, name)
		}
	}
	if got := strings.Join(started, ","); got != "a,b,b2,c" && got != "a,b2,b,c" {
		t.Fatalf("start order %q", got)
	}
}

func TestSecondSignalKillsAtOnce(t *testing.T) {
	needRoot(t)
	cfg := writeConfig(t, `
[services.slow]
command = ["sh", "-c", "trap 'echo term' TERM; while :; do sleep 0.05; done"]
stop_timeout = "30s"
`)
	s := run{pid1: true, args: []string{"--config", cfg}}.start(t)
	time.Sleep(300 * time.Millisecond)
	pid := s.tendPid(t, true)
	syscall.Kill(pid, syscall.SIGTERM)
	s.waitOutput(t, "slow | term", 10*time.Second)
	syscall.Kill(pid, syscall.SIGINT)
	res := s.wait(t, 5*time.Second) // far less than stop_timeout
	if !strings.Contains(res.stderr, "killing everything now") {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
}

func TestSupervisorExitCodes(t *testing.T) {
	needRoot(t)
	cases := []struct {
		name   string
		config string
		main   []string
		want   int
	}{
		{"main program decides", `
[services.bg]
command = "sleep 30"`, []string{"sh", "-c", "exit 42"}, 42},
		{"main killed by a signal", `
[services.bg]
command = "sleep 30"`, []string{"sh", "-c", "kill -KILL $$"}, 137},
		{"essential service gives up", `
[services.core]
command = "sh -c 'exit 7'"
restart = "never"
essential = true
[services.bg]
command = "sleep 30"`, nil, 7},
		{"essential oneshot fails before the main program", `
[services.migrate]
command = "sh -c 'exit 3'"
oneshot = true
essential = true`, []string{"sh", "-c", "echo never; exit 0"}, 3},
		{"all clean", `
[services.a]
command = "true"
oneshot = true
[services.b]
command = "sh -c 'exit 0'"
restart = "on-failure"`, nil, 0},
		{"one unclean", `
[services.a]
command = "true"
oneshot = true
[services.b]
command = "sh -c 'exit 5'"
restart = "never"`, nil, 1},
		{"a failed dependency blocks its dependant", `
[services.dep]
command = "false"
oneshot = true
[services.app]
command = "sleep 30"
depends_on = ["dep"]`, nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"--config", writeConfig(t, c.config)}
			if c.main != nil {
				args = append(append(args, "--"), c.main...)
			}
			res := run{pid1: true, args: args}.do(t)
			if res.code != c.want {
				t.Fatalf("exit %d, want %d\n%s%s", res.code, c.want, res.stdout, res.stderr)
			}
			if strings.Contains(res.stdout, "never") {
				t.Fatal("the main program ran although a service failed")
			}
		})
	}
}

func TestOutputIsWholeAndInOrder(t *testing.T) {
	needRoot(t)
	const services, lines = 10, 20000
	var cfg strings.Builder
	for i := 0; i < services; i++ {
		// seq writes in large blocks that cut lines anywhere; every third
		// service also writes long lines; each exits right after its last
		// write.
		fmt.Fprintf(&cfg, `
[services.s%d]
command = ["sh", "-c", "seq -f 's%d line %%g %s' %d; seq -f 'err %%g' 100 >&2"]
oneshot = true
`, i, i, strings.Repeat("x", (i%3)*300), lines)
	}
	res := run{pid1: true, args: []string{"--config", writeConfig(t, cfg.String())}, timeout: 120 * time.Second}.do(t)
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, tail(res.stderr))
	}
	next := make([]int, services)
	for _, line := range strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n") {
		var svc, n int
		var prefix, word string
		if _, err := fmt.Sscanf(line, "%s | s%d %s %d", &prefix, &svc, &word, &n); err != nil || prefix != fmt.Sprintf("s%d", svc) {
			t.Fatalf("torn or foreign line %q", line)
		}
		want := fmt.Sprintf("s%d | s%d line %d %s", svc, svc, n, strings.Repeat("x", (svc%3)*300))
		if strings.TrimRight(line, " ") != strings.TrimRight(want, " ") {
			t.Fatalf("line %q, want %q", line, want)
		}
		if n != next[svc]+1 {
			t.Fatalf("s%d: line %d after %d", svc, n, next[svc])
		}
		next[svc] = n
	}
	for i, n := range next {
		if n != lines {
			t.Fatalf("s%d: %d lines arrived, want %d", i, n, lines)
		}
	}
	if got := strings.Count(res.stderr, " | err "); got != services*100 {
		t.Fatalf("%d stderr lines, want %d", got, services*100)
	}
}

// TestSlowReaderGetsTheLastLines: a service writes 300 KB and ends, and
// tend then has nothing left to do but exit, while its reader pauses for
// 2.5 s before it reads anything (a busy log collector). A slow reader is
// not a gone one: every line must arrive. (tend gave up after 1 s and lost
// the end of the output.)
func TestSlowReaderGetsTheLastLines(t *testing.T) {
	needRoot(t)
	const lines = 3000
	cfg := writeConfig(t, fmt.Sprintf(`
control_socket = ""
[services.talk]
command = ["sh", "-c", "seq -f 'line %%g %s' %d"]
oneshot = true
`, strings.Repeat("x", 90), lines))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := run{pid1: true, bin: binUnderTest(), args: []string{"--config", cfg}, stdout: w}.start(t)
	w.Close()
	time.Sleep(2500 * time.Millisecond)
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	res := p.wait(t, 30*time.Second)
	got := strings.Count(string(out), "talk | line ")
	if res.code != 0 || got != lines {
		t.Fatalf("exit %d, %d of %d lines arrived\n%s", res.code, got, lines, tail(res.stderr))
	}
}

func TestLongLinesAreSplitAndJSON(t *testing.T) {
	needRoot(t)
	cfg := writeConfig(t, `
log_format = "json"
[services.long]
command = ["sh", "-c", "head -c 150000 /dev/zero | tr '\\0' 'a'; echo; echo short"]
oneshot = true
`)
	res := run{pid1: true, args: []string{"--config", cfg}}.do(t)
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if res.code != 0 || len(lines) != 4 {
		t.Fatalf("exit %d, %d lines, want 150000 bytes split at 64 KiB into 3, then short", res.code, len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `{"time":"`) || !strings.Contains(l, `"service":"long","stream":"stdout"`) {
			t.Fatalf("not a JSON line: %.200s", l)
		}
	}
	if !strings.Contains(lines[3], `"line":"short"`) {
		t.Fatalf("last line %s", lines[3])
	}
}

func TestInvalidConfigStartsNothing(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	cfg := writeConfig(t, fmt.Sprintf(`
log_level = "loud"
[services.ok]
command = ["touch", %q]
[services.bad]
command = ""
restart = "sometimes"
stop_signal = "SIGNOPE"
backoff = { type = "fixed", delay = "soon" }
colour = "blue"
depends_on = ["ghost"]
[services.bad.ready]
tcp = "127.0.0.1:99999"
http = "ftp://x"
[services.ok.health]
file = "/x"
threshold = 0
interval = "0s"
`, marker))
	res := run{args: []string{"--config", cfg}}.do(t)
	if res.code != 2 {
		t.Fatalf("exit %d, want 2", res.code)
	}
	for _, key := range []string{"log_level", "services.bad.command", "services.bad.restart", "services.bad.stop_signal",
		"services.bad.backoff.delay", "services.bad.colour", "services.bad.depends_on", "services.bad.ready",
		"services.ok.health.threshold", "services.ok.health.interval"} {
		if !regexp.MustCompile(regexp.QuoteMeta(cfg) + `:\d+: ` + regexp.QuoteMeta(key) + `: `).MatchString(res.stderr) {
			t.Errorf("no error naming file, line and %s:\n%s", key, res.stderr)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a service ran although the config is invalid")
	}
	chk := run{args: []string{"check", cfg}}.do(t)
	if chk.code != 1 || chk.stderr != res.stderr {
		t.Fatalf("tend check: exit %d\n%s", chk.code, chk.stderr)
	}
	for _, example := range []string{"../config.toml.example", "../ci.toml.example"} {
		if good := (run{args: []string{"check", example}}.do(t)); good.code != 0 {
			t.Fatalf("%s does not pass tend check: %s", example, good.stderr)
		}
	}
}

func TestSlowReaderBoundsMemory(t *testing.T) {
	needRoot(t)
	// 2,000,000 lines (about 24 MB with prefixes) into a pipe that nobody
	// reads for a while: the service must block, tend's memory must not
	// grow, and afterwards every line must arrive.
	cfg := writeConfig(t, `
[services.flood]
command = ["sh", "-c", "yes flood-line | head -n 2000000"]
oneshot = true
`)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tendBin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = w, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer cmd.Process.Kill()
	time.Sleep(1500 * time.Millisecond)
	rss := vmKiB(t, cmd.Process.Pid, "VmHWM")
	lines := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if sc.Text() != "flood | flood-line" {
			t.Fatalf("torn line %q", sc.Text())
		}
		lines++
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tend: %v", err)
	}
	t.Logf("tend's peak RSS while its reader stalled: %d KiB", rss)
	if lines != 2000000 {
		t.Fatalf("%d lines arrived, want 2000000", lines)
	}
	if rss > 20<<10 {
		t.Fatalf("tend grew to %d KiB while its reader stalled", rss)
	}
}

// vmKiB reads a Vm* field of /proc/PID/status.
func vmKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func TestSignalsReachServicesOrMain(t *testing.T) {
	needRoot(t)
	trap := `trap 'echo got USR1' USR1; trap 'echo got INT; exit 0' INT; trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.05; done`
	cfg := writeConfig(t, fmt.Sprintf(`
[services.a]
command = ["sh", "-c", %[1]q]
[services.b]
command = ["sh", "-c", %[1]q]
`, trap))
	// No main program: a forwarded signal goes to every running service.
	s := run{pid1: true, args: []string{"--config", cfg}}.start(t)
	s.waitOutput(t, "a | up", 10*time.Second)
	s.waitOutput(t, "b | up", 10*time.Second)
	pid := s.tendPid(t, true)
	syscall.Kill(pid, syscall.SIGUSR1)
	s.waitOutput(t, "a | got USR1", 5*time.Second)
	s.waitOutput(t, "b | got USR1", 5*time.Second)
	syscall.Kill(pid, syscall.SIGTERM)
	if res := s.wait(t, 10*time.Second); res.code != 0 {
		t.Fatalf("exit %d", res.code)
	}

	// With a main program, it gets forwarded signals, and at shutdown the
	// signal that came in (SIGINT here), before any service is stopped.
	s = run{pid1: true, args: []string{"--config", cfg, "--", "sh", "-c", "echo main up; " + trap}}.start(t)
	s.waitOutput(t, "main up", 10*time.Second)
	pid = s.tendPid(t, true)
	syscall.Kill(pid, syscall.SIGUSR1)
	s.waitOutput(t, "got USR1", 5*time.Second)
	syscall.Kill(pid, syscall.SIGINT)
	res := s.wait(t, 10*time.Second)
	if strings.Contains(res.stdout, "a | got USR1") || strings.Contains(res.stdout, "b | got USR1") {
		t.Fatalf("services got the signal meant for the main program:\n%s", res.stdout)
	}
	lines := strings.Split(res.stdout, "\n")
	mainInt, firstServiceStop := -1, -1
	for i, l := range lines {
		if l == "got INT" && mainInt < 0 {
			mainInt = i
		}
		if (l == "a | got TERM" || l == "b | got TERM") && firstServiceStop < 0 {
			firstServiceStop = i
		}
	}
	if mainInt < 0 || firstServiceStop < mainInt {
		t.Fatalf("want the main program to get SIGINT before services get SIGTERM:\n%s", res.stdout)
	}
}

func TestShutdownTimeoutBoundsShutdown(t *testing.T) {
	needRoot(t)
	// The service ignores SIGTERM and has a long stop_timeout; the whole
	// shutdown must still end at shutdown_timeout.
	cfg := writeConfig(t, `
shutdown_timeout = "1s"
[services.deaf]
command = ["sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.05; done"]
stop_timeout = "60s"
`)
	s := run{pid1: true, args: []string{"--config", cfg}}.start(t)
	s.waitOutput(t, "deaf | up", 10*time.Second)
	start := time.Now()
	syscall.Kill(s.tendPid(t, true), syscall.SIGTERM)
	res := s.wait(t, 20*time.Second)
	if took := time.Since(start); took > 10*time.Second || !strings.Contains(res.stderr, "shutdown_timeout 1s expired") {
		t.Fatalf("shutdown took %s\n%s", took, res.stderr)
	}
}
