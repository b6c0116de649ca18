//go:build stress

package stress

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// brokenPipe is the write end of a pipe whose reader is gone.
func brokenPipe(t *testing.T) *os.File {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { w.Close() })
	return w
}

// idleCPU is tend's CPU time over d.
func idleCPU(pid int, d time.Duration) time.Duration {
	a, _ := readStats(pid)
	time.Sleep(d)
	b, _ := readStats(pid)
	return b.cpu - a.cpu
}

// TestStdoutClosed: tend's stdout and stderr are a pipe whose reader is
// gone, at every verbosity, in both modes. Signals and output arrive; then
// tend must use no CPU while idle, and still obey SIGTERM.
func TestStdoutClosed(t *testing.T) {
	for _, mode := range []string{"wrapper", "supervisor"} {
		for v := 0; v <= 3; v++ {
			t.Run(fmt.Sprintf("%s/-v%d", mode, v), func(t *testing.T) {
				var args []string
				for range v {
					args = append(args, "-v")
				}
				switch mode {
				case "wrapper":
					args = append(args, "--", helperBin, "sleep", "1h")
				case "supervisor":
					cfg := writeFile(t, "tend.toml", fmt.Sprintf(`control_socket = ""
[services.talker]
command = ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; echo err $i >&2; done; exec %s sleep 1h"]
[services.quiet]
command = [%[1]q, "sleep", "1h"]
`, helperBin))
					args = append(args, "--config", cfg)
				}
				p := start(t, spec{args: args, pid1: true, cpu: -1, outFile: brokenPipe(t)})
				time.Sleep(500 * time.Millisecond)
				for range 20 {
					p.signal(syscall.SIGUSR1) // forwarded (the Go helper ignores it), logged at -vv
					p.signal(syscall.SIGWINCH)
				}
				time.Sleep(500 * time.Millisecond)
				cpu := idleCPU(p.pid, 2*time.Second)
				st, _ := readStats(p.pid)
				sent := time.Now()
				p.signal(syscall.SIGTERM)
				code := p.wait(15 * time.Second)
				t.Logf("%s at -v×%d with stdout and stderr gone: CPU %s over 2s idle; TERM obeyed in %s (exit %d); %s",
					mode, v, cpu, time.Since(sent).Round(time.Millisecond), code, st)
				if cpu > 50*time.Millisecond {
					t.Errorf("tend used %s of CPU in 2s of idle", cpu)
				}
				if code < 0 {
					t.Errorf("SIGTERM not obeyed within 15s")
				}
			})
		}
	}
}

// TestDescriptorLimit: tend with RLIMIT_NOFILE 64 and 40 services, each of
// which needs two pipes: the descriptors run out. The failures must be
// clear, tend must keep answering its control socket, and once an
// operator stops 20 services the other 20 must all come up.
func TestDescriptorLimit(t *testing.T) {
	const services = 40
	sock := filepath.Join(t.TempDir(), "tend.sock")
	var b strings.Builder
	fmt.Fprintf(&b, "control_socket = %q\n", sock)
	for i := range services {
		fmt.Fprintf(&b, `[services.s%02d]
command = [%q, "sleep", "1h", "marker-s%02d"]
backoff = { delay = "200ms" }
crash_loop = { max_restarts = 100000, window = "1s", backoff = "200ms" }
`, i, helperBin, i)
	}
	cfg := writeFile(t, "tend.toml", b.String())
	p := start(t, spec{args: []string{"--config", cfg}, pid1: true, cpu: -1, nofile: 64})
	time.Sleep(3 * time.Second)
	running := func() []int {
		var up []int
		for i := range services {
			if len(servicePid(p.pid, fmt.Sprintf("marker-s%02d", i))) > 0 {
				up = append(up, i)
			}
		}
		return up
	}
	up := running()
	_, ctlErr := ctl(sock, "status")
	stderr := p.err.String()
	emfile := strings.Count(stderr, "too many open files")
	t.Logf("with 64 descriptors: %d of %d services up after 3s, %d errors naming EMFILE, tend ctl status while short: %v", len(up), services, emfile, errOrOK(ctlErr))
	t.Logf("an error line: %s", firstMatch(stderr, "too many open files"))
	if p.exited() {
		t.Fatalf("tend exited\n%s", tail(stderr, 20))
	}
	// Free descriptors: stop 20 of the running services.
	stopped := map[int]bool{}
	for _, i := range up {
		if len(stopped) == services/2 {
			break
		}
		if out, err := ctl(sock, "stop", fmt.Sprintf("s%02d", i)); err != nil {
			t.Logf("tend ctl stop s%02d: %v %s", i, err, out)
			continue
		}
		stopped[i] = true
	}
	var missing []int
	ok := waitFor(20*time.Second, func() bool {
		missing = missing[:0]
		for i := range services {
			if !stopped[i] && len(servicePid(p.pid, fmt.Sprintf("marker-s%02d", i))) == 0 {
				missing = append(missing, i)
			}
		}
		return len(missing) == 0
	})
	out, err := ctl(sock, "status")
	t.Logf("after stopping %d services: the other %d all up: %v (missing %v); tend ctl status: %v; load %s",
		len(stopped), services-len(stopped), ok, missing, errOrOK(err), loadavg())
	if !ok {
		t.Errorf("services did not recover once descriptors were free\n%s", tail(p.err.String(), 20))
	}
	if err != nil {
		t.Errorf("the control socket does not answer after descriptors ran out: %v\n%s", err, out)
	}
	p.signal(syscall.SIGTERM)
	if p.wait(20*time.Second) < 0 {
		t.Error("tend did not shut down")
	}
}

func errOrOK(err error) string {
	if err == nil {
		return "answered"
	}
	return "failed: " + err.Error()
}

func firstMatch(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return "(none)"
}

// TestStopCont: tend is stopped (SIGSTOP) for 10 seconds while its
// services keep exiting; after SIGCONT every exit must be handled: no
// zombie left, each service running again, every exit logged.
func TestStopCont(t *testing.T) {
	const services = 10
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("control_socket = \"\"\nlog_format = \"json\"\n")
	for i := range services {
		fmt.Fprintf(&b, `[services.crash%d]
command = [%q, "exitseq", %q, "0", "150ms"]
backoff = { delay = "50ms" }
min_uptime = "1h"
crash_loop = { max_restarts = 1000000, window = "1s", backoff = "50ms" }
`, i, helperBin, filepath.Join(dir, fmt.Sprintf("crash%d", i)))
	}
	cfg := writeFile(t, "tend.toml", b.String())
	p := start(t, spec{args: []string{"--config", cfg}, pid1: true, cpu: -1})
	time.Sleep(2 * time.Second)
	p.signal(syscall.SIGSTOP)
	time.Sleep(10 * time.Second)
	zombiesStopped := zombiesUnder(p.pid)
	cont := time.Now()
	p.signal(syscall.SIGCONT)
	var zombies int
	cleared := waitFor(10*time.Second, func() bool { zombies = zombiesUnder(p.pid); return zombies == 0 })
	clearedIn := time.Since(cont)
	time.Sleep(2 * time.Second)
	p.signal(syscall.SIGTERM)
	if p.wait(20*time.Second) < 0 {
		t.Error("tend did not shut down")
	}
	logged := loggedExits(p.err.String())
	lost, wrong, total := 0, 0, 0
	for i := range services {
		name := fmt.Sprintf("crash%d", i)
		rec := recordedExits(filepath.Join(dir, name))
		l, w := compareExits(rec, logged[name])
		lost += l
		wrong += w
		total += len(rec)
	}
	t.Logf("SIGSTOP for 10s: %d zombies waiting when stopped; after SIGCONT all reaped: %v in %s; %d exits in all: %d not logged, %d misattributed; load %s",
		zombiesStopped, cleared, clearedIn.Round(time.Millisecond), total, lost, wrong, loadavg())
	if !cleared || lost > 0 || wrong > 0 {
		t.Errorf("exits not all handled after SIGCONT (zombies %d)", zombies)
	}
}

// TestReloadStorm: 1,000 SIGHUPs, the config alternating between valid
// (two variants) and invalid. No panic, tend alive, and exactly one
// process per service at the end.
func TestReloadStorm(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tend.toml")
	valid := func(variant int) string {
		return fmt.Sprintf(`control_socket = ""
[services.a]
command = [%[1]q, "sleep", "1h", "marker-a"]
[services.b]
command = [%[1]q, "sleep", "1h", "marker-b"]
environment = { VARIANT = "%[2]d" }
stop_timeout = "1s"
[services.c]
command = [%[1]q, "sleep", "1h", "marker-c"]
`, helperBin, variant)
	}
	invalid := "[services.a]\ncommand = [\"x\"\n"
	if err := os.WriteFile(cfgPath, []byte(valid(0)), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, spec{args: []string{"--config", cfgPath}, pid1: true, cpu: -1})
	time.Sleep(time.Second)
	startAt := time.Now()
	for i := range 1000 {
		body := invalid
		if i%2 == 0 {
			body = valid(i / 2 % 2)
		}
		os.WriteFile(cfgPath, []byte(body), 0o644)
		p.signal(syscall.SIGHUP)
		time.Sleep(3 * time.Millisecond)
	}
	os.WriteFile(cfgPath, []byte(valid(1)), 0o644)
	p.signal(syscall.SIGHUP)
	sent := time.Since(startAt)
	var counts map[string]int
	settled := waitFor(30*time.Second, func() bool {
		counts = map[string]int{}
		for _, m := range []string{"a", "b", "c"} {
			counts[m] = len(servicePid(p.pid, "marker-"+m))
		}
		return counts["a"] == 1 && counts["b"] == 1 && counts["c"] == 1
	})
	time.Sleep(time.Second) // nothing more may start
	for _, m := range []string{"a", "b", "c"} {
		counts[m] = len(servicePid(p.pid, "marker-"+m))
	}
	stderr := p.err.String()
	st, _ := readStats(p.pid)
	t.Logf("1,001 SIGHUPs in %s (valid and invalid alternating): processes per service at the end %v; %d reloads refused as invalid, %d panics; tend alive: %v; %s; load %s",
		sent.Round(time.Millisecond), counts, strings.Count(stderr, "invalid"), strings.Count(stderr, "panic"), !p.exited(), st, loadavg())
	if !settled || counts["a"] != 1 || counts["b"] != 1 || counts["c"] != 1 {
		t.Errorf("not one process per service: %v", counts)
	}
	if strings.Contains(stderr, "panic") || p.exited() {
		t.Errorf("tend panicked or exited\n%s", tail(stderr, 20))
	}
	p.signal(syscall.SIGTERM)
	if p.wait(20*time.Second) < 0 {
		t.Error("tend did not shut down")
	}
}
