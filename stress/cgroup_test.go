//go:build stress

package stress

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

// pidsCgroup makes a child cgroup with pids.max = limit (cgroup v2 with the
// pids controller, else the v1 pids hierarchy) and returns the file a
// process writes its PID to in order to join it, and its directory.
func pidsCgroup(t *testing.T, limit int) (procs, dir string, cleanup func()) {
	t.Helper()
	var parent string
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(b), "pids") {
		parent = "/sys/fs/cgroup"
		os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+pids"), 0o644)
	} else if _, err := os.Stat("/sys/fs/cgroup/pids/pids.max"); err == nil || dirExists("/sys/fs/cgroup/pids") {
		parent = "/sys/fs/cgroup/pids"
	} else {
		t.Fatal("no pids cgroup controller (v2 or v1) to test with")
	}
	cgroupSeq++
	dir = filepath.Join(parent, fmt.Sprintf("tend-stress-%d-%d", os.Getpid(), cgroupSeq))
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.Itoa(limit)), 0o644); err != nil {
		t.Fatal(err)
	}
	cleanup = func() {
		for range 50 {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			left := strings.Fields(string(b))
			if len(left) == 0 {
				break
			}
			for _, p := range left {
				if pid, err := strconv.Atoi(p); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.Remove(dir)
	}
	t.Cleanup(cleanup)
	return filepath.Join(dir, "cgroup.procs"), dir, cleanup
}

var cgroupSeq int

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func readInt(path string) int {
	b, _ := os.ReadFile(path)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// servicePids maps each service's name to the PIDs of its process (found by
// the marker in its command line).
func servicePid(root int, marker string) []int {
	var out []int
	for _, pid := range descendants(root) {
		if strings.Contains(cmdline(pid), marker) {
			out = append(out, pid)
		}
	}
	return out
}

// TestPidsCgroupForkBomb runs tend in a pids cgroup (limit 50) with a
// service that forks up to the limit for 8 seconds (after waiting 2s, so
// that start-up is not a race with it), next to healthy
// services, a service with an exec health check every 50ms, and one that
// restarts every 300ms, while a signal comes in every 20ms. tend must live
// through it, leave the healthy
// services alone, make no thread, and shut down normally afterwards.
func TestPidsCgroupForkBomb(t *testing.T) {
	const limit = 50
	runs := 3
	if n, err := strconv.Atoi(os.Getenv("STRESS_PIDS_RUNS")); err == nil && n > 0 {
		runs = n
	}
	survived := 0
	for r := range runs {
		if pidsRound(t, r, limit) {
			survived++
		}
	}
	t.Logf("tend survived %d of %d fork bombs in a pids cgroup of %d; load %s", survived, runs, limit, loadavg())
}

func pidsRound(t *testing.T, round, limit int) bool {
	procs, dir, cleanup := pidsCgroup(t, limit)
	defer cleanup()
	sock := filepath.Join(t.TempDir(), "tend.sock")
	cfg := writeFile(t, "tend.toml", fmt.Sprintf(`control_socket = %q
shutdown_timeout = "5s"
[services.bomb]
command = [%[2]q, "forkbomb", "1s", "8s", "2s"]
restart = "never"
[services.web]
command = [%[2]q, "sleep", "1h", "marker-web"]
[services.web.health]
exec = ["true"]
interval = "50ms"
timeout = "1s"
threshold = 3
[services.db]
command = [%[2]q, "sleep", "1h", "marker-db"]
[services.chatty]
command = [%[2]q, "tick", "1ms"]
[services.flappy]
command = [%[2]q, "sleep", "300ms", "marker-flappy"]
backoff = { delay = "100ms" }
crash_loop = { max_restarts = 1000, window = "1s" }
min_uptime = "100ms"
`, sock, helperBin))
	p := start(t, spec{args: []string{"--config", cfg}, pid1: true, cpu: -1, cgroup: procs})
	var web, db int
	if !waitFor(10*time.Second, func() bool {
		w, d := servicePid(p.pid, "marker-web"), servicePid(p.pid, "marker-db")
		if len(w) == 1 && len(d) == 1 {
			web, db = w[0], d[0]
			return true
		}
		return false
	}) {
		var seen []string
		for _, pid := range descendants(p.pid) {
			seen = append(seen, fmt.Sprintf("%d:%s", pid, cmdline(pid)))
		}
		t.Errorf("round %d: services never started (tend exited: %v, code %d); under tend: %q\n%s", round, p.exited(), p.code, seen, tail(p.err.String(), 30))
		return false
	}
	st0, _ := readStats(p.pid)
	w := watchStats(p.pid, 50*time.Millisecond)
	// The bomb holds the limit for 8s; meanwhile signals come in, which
	// tend forwards to every service.
	deadline := time.Now().Add(11 * time.Second)
	for time.Now().Before(deadline) && !p.exited() {
		p.signal(syscall.SIGWINCH) // ignored by default: a service just started does not die of it
		time.Sleep(20 * time.Millisecond)
	}
	alive := !p.exited()
	last, maxThreads := w.end()
	events, _ := os.ReadFile(filepath.Join(dir, "pids.events"))
	peak := readInt(filepath.Join(dir, "pids.peak"))
	stderr := p.err.String()
	fatal := tendFatal(stderr)
	couldNot := strings.Count(stderr, "could not run")
	healthFails := strings.Count(stderr, "health check failed")
	t.Logf("round %d: tend alive %v, threads %d at start, %d at most; pids peak %d, %s; %d 'could not run', %d health failures logged; %s",
		round, alive, st0.threads, maxThreads, peak, strings.TrimSpace(strings.ReplaceAll(string(events), "\n", " ")), couldNot, healthFails, last)
	if !alive || fatal {
		t.Errorf("round %d: tend died (exit %d)\n%s", round, p.code, firstLines(stderr, "fatal error", 3))
		return false
	}
	if maxThreads > st0.threads {
		t.Errorf("round %d: tend made threads under the bomb: %d, then %d", round, st0.threads, maxThreads)
	}
	// The healthy services are the same processes.
	if got := servicePid(p.pid, "marker-web"); len(got) != 1 || got[0] != web {
		t.Errorf("round %d: web was touched: %v, was %d", round, got, web)
	}
	if got := servicePid(p.pid, "marker-db"); len(got) != 1 || got[0] != db {
		t.Errorf("round %d: db was touched: %v, was %d", round, got, db)
	}
	// After the bomb, tend starts things again: flappy comes back.
	if !waitFor(10*time.Second, func() bool { return len(servicePid(p.pid, "marker-flappy")) == 1 }) {
		t.Errorf("round %d: flappy never restarted after the bomb\n%s", round, tail(stderr, 20))
	}
	out, err := ctl(sock, "status")
	if err != nil {
		t.Errorf("round %d: tend ctl status after the bomb: %v\n%s", round, err, out)
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(20 * time.Second); code < 0 {
		t.Errorf("round %d: tend did not shut down after the bomb\n%s", round, tail(p.err.String(), 30))
		return true
	}
	return true
}

// tendFatal reports a Go runtime crash of tend itself: its lines are not
// prefixed with a service's name, as the crash of a service (the bomb's
// own runtime may fail to make a thread too) is.
func tendFatal(stderr string) bool {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "fatal error") || strings.HasPrefix(line, "runtime: failed to create new OS thread") {
			return true
		}
	}
	return false
}

// firstLines is the line of s that starts with prefix and the next n-1.
func firstLines(s, prefix string, n int) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return strings.Join(lines[max(0, i-1):min(len(lines), i+n)], "\n")
		}
	}
	return tail(s, n)
}

// ctl runs tend ctl against a socket.
func ctl(sock string, args ...string) (string, error) {
	return runCmd(10*time.Second, tendBin, append([]string{"ctl", "--socket", sock}, args...)...)
}
