//go:build stress

package stress

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// exitRE finds the exit code in the reason of a state change.
var exitRE = regexp.MustCompile(`^(?:running|stopping) → [a-z-]+: exit code (\d+)`)

// loggedExits lists, per service, the exit codes tend logged, in order:
// state changes out of running or stopping whose reason is an exit code. The configs
// ask for log_format = "json", whose field names are stable (msg, service,
// from, to).
func loggedExits(stderr string) map[string][]int {
	out := map[string][]int{}
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var e struct {
			Msg, Service, From string
		}
		// A run judged by the restart policy ends "running → …"; one that
		// ends as the shutdown begins, "stopping → stopped". Both say the
		// exit code.
		if json.Unmarshal([]byte(line), &e) != nil || (e.From != "running" && e.From != "stopping") {
			continue
		}
		if m := exitRE.FindStringSubmatch(e.Msg); m != nil {
			code, _ := strconv.Atoi(m[1])
			out[e.Service] = append(out[e.Service], code)
		}
	}
	return out
}

// recordedExits reads the "K code" lines an exitseq service wrote.
func recordedExits(file string) []int {
	b, _ := os.ReadFile(file + ".log")
	var out []int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			c, _ := strconv.Atoi(f[1])
			out = append(out, c)
		}
	}
	return out
}

// compareExits counts the exits a service recorded that tend did not log
// (lost) or logged with another code (misattributed).
func compareExits(recorded, logged []int) (lost, wrong int) {
	for i, c := range recorded {
		if i >= len(logged) {
			lost++
		} else if logged[i] != c {
			wrong++
		}
	}
	return lost, wrong
}

// TestExitsRacingOrphans: 10 services exit 1,000 times each with codes
// that change every run (10,000 supervised exits), while another service
// makes 50,000 orphans that tend reaps too. Every exit must be logged for
// its own service with its own code, and no zombie may be left.
func TestExitsRacingOrphans(t *testing.T) {
	const services, runs, orphans = 10, 1000, 50000
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("control_socket = \"\"\nlog_format = \"json\"\n")
	for i := range services {
		fmt.Fprintf(&b, `[services.exit%d]
command = [%q, "exitseq", %q, "%d"]
backoff = { delay = "1ms" }
min_uptime = "1h"
crash_loop = { max_restarts = 1000000, window = "1s", backoff = "1ms" }
`, i, helperBin, filepath.Join(dir, fmt.Sprintf("exit%d", i)), runs)
	}
	done := filepath.Join(dir, "orphans.done")
	fmt.Fprintf(&b, `[services.orphans]
command = [%q, "orphans", "%d", %q]
restart = "never"
`, helperBin, orphans, done)
	cfg := writeFile(t, "tend.toml", b.String())
	startAt := time.Now()
	p := start(t, spec{args: []string{"--config", cfg}, pid1: true, cpu: -1})
	w := watchStats(p.pid, 100*time.Millisecond)
	finished := waitFor(10*time.Minute, func() bool {
		if _, err := os.Stat(done); err != nil {
			return false
		}
		for i := range services {
			if len(recordedExits(filepath.Join(dir, fmt.Sprintf("exit%d", i)))) < runs {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(startAt)
	if !finished || p.exited() {
		t.Fatalf("not finished after %s (tend exited: %v)\n%s", elapsed, p.exited(), tail(p.err.String(), 20))
	}
	// Every exit is handled once the reaper has run: give it a moment.
	var zombies int
	waitFor(5*time.Second, func() bool { zombies = zombiesUnder(p.pid); return zombies == 0 })
	st, maxThreads := w.end()
	p.signal(syscall.SIGTERM)
	if code := p.wait(30 * time.Second); code < 0 {
		t.Errorf("tend did not shut down\n%s", tail(p.err.String(), 20))
	}
	logged := loggedExits(p.err.String())
	totalLost, totalWrong, total := 0, 0, 0
	for i := range services {
		name := fmt.Sprintf("exit%d", i)
		rec := recordedExits(filepath.Join(dir, name))
		lost, wrong := compareExits(rec, logged[name])
		totalLost += lost
		totalWrong += wrong
		total += len(rec)
		if lost > 0 || wrong > 0 || len(logged[name]) != len(rec) {
			t.Errorf("%s: %d exits recorded, %d logged: %d lost, %d misattributed", name, len(rec), len(logged[name]), lost, wrong)
		}
	}
	orphanLine, _ := os.ReadFile(done)
	dropped := strings.Contains(p.err.String(), "log lines dropped")
	t.Logf("%d supervised exits with changing codes and %s orphans in %s: %d lost, %d misattributed, %d zombies after; log lines dropped: %v",
		total, strings.TrimSpace(strings.TrimPrefix(string(orphanLine), "done ")), elapsed.Round(time.Millisecond), totalLost, totalWrong, zombies, dropped)
	t.Logf("tend: %s, at most %d threads; load %s", st, maxThreads, loadavg())
	if zombies != 0 {
		t.Errorf("%d zombies left under tend", zombies)
	}
}
