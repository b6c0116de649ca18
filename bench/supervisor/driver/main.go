// Command driver runs the tend vs supervisord vs s6 benchmark; bench/supervisor/run.sh
// builds it with the svc helper and calls it. It is a benchmark tool, not part
// of tend, so it may use os/exec. Markdown goes to stdout, progress to stderr.
//
// Every time is CLOCK_MONOTONIC, read by svc (svc.c) in the service itself and
// by the driver just before it launches a supervisor, so the driver's polling
// interval never enters a result.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

var (
	dir          = mustEnv("BENCH_DIR") // private temp dir; everything we start has it in its argv
	tendBin      = mustEnv("TEND")
	supervisordB = mustEnv("SUPERVISORD")
	svcBin       = mustEnv("SVC")
	s6Svscan     = mustEnv("S6_SVSCAN")
	s6Svscanctl  = filepath.Join(filepath.Dir(s6Svscan), "s6-svscanctl")

	idleSeconds     = envInt("IDLE_SECONDS", 60)
	restarts        = envInt("RESTARTS", 1000)
	restartWarmup   = envInt("RESTART_WARMUP", 5)
	restartMaxSecs  = envInt("RESTART_MAX_SECONDS", 30)
	services        = envInt("SERVICES", 1000)
	spawnTimeoutSec = envInt("SPAWN_TIMEOUT", 120)
	clkTck          = envInt("CLK_TCK", 100)

	// supervisord stops 1,000 services at its spawn pace: 10-40 s here.
	stopGrace = 60 * time.Second
)

func mustEnv(k string) string {
	v := os.Getenv(k)
	if v == "" {
		fmt.Fprintf(os.Stderr, "driver: %s is not set (run bench/supervisor/run.sh)\n", k)
		os.Exit(2)
	}
	return v
}

func envInt(k string, def int) int {
	if v := os.Getenv(k); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fmt.Fprintf(os.Stderr, "driver: %s=%q is not a count\n", k, v)
			os.Exit(2)
		}
		return n
	}
	return def
}

var t0 = time.Now()

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%3.0fs] "+format+"\n", append([]any{time.Since(t0).Seconds()}, a...)...)
}

// monoNs is CLOCK_MONOTONIC, the clock svc stamps with (Go's time.Now hides
// the absolute monotonic value).
func monoNs() int64 {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 1, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		panic(e)
	}
	return ts.Nano()
}

// ---------------------------------------------------------------------------
// The three supervisors.

type kind struct {
	name string
	// conf writes a config for n services running `svc MODE stamps` and
	// returns the supervisor's argv. restart selects the zero-delay restart
	// config (the service exits at once) over the idle one (it pauses).
	conf func(tag, mode, stamps string, n int, restart bool) []string
	// multi: the supervisor is a tree of its own processes (s6: s6-svscan
	// and one s6-supervise per service), not one process; its services
	// are then grandchildren, and its graceful stop is s6-svscanctl -t.
	multi bool
}

func svcName(i int) string { return fmt.Sprintf("s%04d", i) }

var tend = kind{name: "tend", conf: func(tag, mode, stamps string, n int, restart bool) []string {
	var b strings.Builder
	// warn: no per-transition log lines, as supervisord's loglevel=warn.
	b.WriteString("log_level = \"warn\"\ncontrol_socket = \"\"\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "\n[services.%s]\ncommand = [%q, %q, %q]\nrestart = \"always\"\n",
			svcName(i), svcBin, mode, stamps)
		if restart {
			b.WriteString("backoff = { type = \"fixed\", delay = \"0s\" }\n" +
				"crash_loop = { max_restarts = 1000000, window = \"1s\", backoff = \"0s\" }\n")
		}
	}
	path := filepath.Join(dir, tag+".toml")
	must(os.WriteFile(path, []byte(b.String()), 0o644))
	return []string{tendBin, "--config", path}
}}

var supervisord = kind{name: "supervisord", conf: func(tag, mode, stamps string, n int, restart bool) []string {
	var b strings.Builder
	// supervisord holds 3 fds per child (two pipes, the log file) and
	// raises RLIMIT_NOFILE to minfds if it is lower. minfds stays at its
	// default of 1024 when the limit is high enough already: each child
	// closes fds 3..minfds one by one in Python before its exec, which
	// slows every spawn.
	// (NOFILE_SOFT comes from run.sh: Go raises the driver's own soft
	// limit, and lowers it again for its children.)
	minfds := 1024
	if envInt("NOFILE_SOFT", 0) < 3*n+64 {
		minfds = max(minfds, 3*n+64)
	}
	fmt.Fprintf(&b, "[supervisord]\nnodaemon=true\nloglevel=warn\nlogfile=%s\npidfile=%s\nminfds=%d\nminprocs=%d\n",
		filepath.Join(dir, tag+".supervisord.log"), filepath.Join(dir, tag+".pid"), minfds, n+256)
	for i := 0; i < n; i++ {
		// One [program] per service, as tend has one [services.x] each.
		fmt.Fprintf(&b, "\n[program:%s]\ncommand=%s %s %s\nstartsecs=0\nautorestart=true\nstartretries=1000000\n"+
			"stdout_logfile=/dev/null\nredirect_stderr=true\n", svcName(i), svcBin, mode, stamps)
	}
	path := filepath.Join(dir, tag+".conf")
	must(os.WriteFile(path, []byte(b.String()), 0o644))
	return []string{supervisordB, "-n", "-c", path}
}}

// s6 gets one service directory per service, with a run script that execs
// the same svc command line. s6-svscan's -c (most services it will supervise)
// defaults to 500 in s6 2.11; it gets at least n.
var s6 = kind{name: "s6", multi: true, conf: func(tag, mode, stamps string, n int, restart bool) []string {
	scan := filepath.Join(dir, tag+".scan")
	must(os.RemoveAll(scan))
	must(os.Mkdir(scan, 0o755))
	run := fmt.Sprintf("#!/bin/sh\nexec %s %s %s\n", svcBin, mode, stamps)
	for i := 0; i < n; i++ {
		sd := filepath.Join(scan, svcName(i))
		must(os.Mkdir(sd, 0o755))
		must(os.WriteFile(filepath.Join(sd, "run"), []byte(run), 0o755))
	}
	return []string{s6Svscan, "-c", strconv.Itoa(max(n, 500)), scan}
}}

func must(err error) {
	if err != nil {
		logf("driver: %v", err)
		cleanupAll()
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------
// Running supervisors, and getting rid of them and of everything they started.

type proc struct {
	name string
	k    kind
	scan string // s6: the scan directory (the last argument)
	cmd  *exec.Cmd
	done chan struct{}
	t0   int64 // CLOCK_MONOTONIC just before the fork
}

var (
	liveMu   sync.Mutex
	live     = map[*proc]bool{}
	stopping bool // set by cleanupAll: nothing new may start
)

func start(k kind, tag string, argv []string) *proc {
	out, err := os.Create(filepath.Join(dir, tag+".out"))
	must(err)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, so a Ctrl-C at the terminal reaches only the
	// driver, which then stops the supervisors in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{name: k.name, k: k, cmd: cmd, done: make(chan struct{})}
	if k.multi {
		p.scan = argv[len(argv)-1]
	}
	liveMu.Lock()
	defer liveMu.Unlock()
	if stopping {
		liveMu.Unlock()
		select {} // the signal handler is about to exit the process
	}
	p.t0 = monoNs()
	must(cmd.Start())
	live[p] = true
	go func() { cmd.Wait(); out.Close(); close(p.done) }()
	return p
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop asks for a graceful shutdown, then kills the supervisor's group; stray
// services are killed afterwards by killStrays. It returns how long the
// graceful part took. tend and supervisord stop their services on SIGTERM and
// exit once they are gone, so their stop ends when they exit. s6 is stopped
// with s6-svscanctl -t, and its stop ends when s6-svscan has exited and all
// its s6-supervise and service processes are gone (polled every 2 ms).
func (p *proc) stop(grace time.Duration) (time.Duration, bool) {
	var tree []int
	if p.k.multi {
		tree = descendants(p.pid())
	}
	t := time.Now()
	if p.k.multi {
		if out, err := exec.Command(s6Svscanctl, "-t", p.scan).CombinedOutput(); err != nil {
			logf("%s: s6-svscanctl -t: %v %s", p.name, err, out)
		}
	} else {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	graceful := true
	deadline := time.After(grace)
	select {
	case <-p.done:
		for len(tree) > 0 {
			if tree = alive(tree); len(tree) == 0 {
				break
			}
			select {
			case <-deadline:
				graceful = false
				logf("%s: %d of its processes still running %v after the stop request: SIGKILL", p.name, len(tree), grace)
				for _, pid := range tree {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				tree = nil
			case <-time.After(2 * time.Millisecond):
			}
		}
	case <-deadline:
		graceful = false
		logf("%s (pid %d) still running %v after the stop request: SIGKILL", p.name, p.pid(), grace)
		syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.done
	}
	d := time.Since(t)
	if p.k.multi {
		// s6-supervise stays in s6-svscan's process group (services get
		// their own sessions); none should be left, but make sure.
		syscall.Kill(-p.pid(), syscall.SIGKILL)
	}
	liveMu.Lock()
	delete(live, p)
	liveMu.Unlock()
	return d, graceful
}

// alive returns the pids in ps that still run (not gone, not zombies),
// stopping at the first live one: the caller only polls until none is left.
func alive(ps []int) []int {
	for i, pid := range ps {
		f := statFields(fmt.Sprintf("/proc/%d/stat", pid))
		if len(f) > 0 && f[0] != "Z" && f[0] != "X" {
			return ps[i:]
		}
	}
	return nil
}

// killStrays SIGKILLs, by PID, every process running our svc binary (nothing
// else runs it) and every process whose working directory is in the run's temp
// dir (s6-supervise and the services it starts: their argv holds only the
// service's name), and waits up to 5 s for the svc processes to be reaped by
// whoever adopted them. Returns how many svc processes it killed.
func killStrays() int {
	n := 0
	for i := 0; i < 50; i++ {
		found := 0
		for _, pid := range pids() {
			// A zombie's exe link is gone: it stays until its new parent reaps it.
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == svcBin {
				syscall.Kill(pid, syscall.SIGKILL)
				found++
			} else if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); strings.HasPrefix(cwd, dir+"/") {
				syscall.Kill(pid, syscall.SIGKILL) // s6-supervise: not counted
			}
		}
		if i == 0 {
			n = found
		}
		if found == 0 && svcZombies() == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return n
}

// svcZombies counts unreaped svc processes (comm "svc", state Z).
func svcZombies() int {
	n := 0
	for _, pid := range pids() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if bytes.Contains(b, []byte("(svc) Z")) {
			n++
		}
	}
	return n
}

var cleanupOnce sync.Once

func cleanupAll() {
	cleanupOnce.Do(func() {
		liveMu.Lock()
		stopping = true
		ps := make([]*proc, 0, len(live))
		for p := range live {
			ps = append(ps, p)
		}
		liveMu.Unlock()
		var wg sync.WaitGroup
		for _, p := range ps {
			wg.Add(1)
			go func(p *proc) { defer wg.Done(); p.stop(15 * time.Second) }(p)
		}
		wg.Wait()
		killStrays()
	})
}

// ---------------------------------------------------------------------------
// /proc.

func pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// statFields returns /proc/PID/stat from field 3 (state) on; the comm field
// may hold spaces and parentheses, so split after its last ')'.
func statFields(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// descendants returns the live (not zombie) processes below pid.
func descendants(pid int) []int {
	parent := map[int]int{}
	for _, p := range pids() {
		f := statFields(fmt.Sprintf("/proc/%d/stat", p))
		if len(f) < 2 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		parent[p], _ = strconv.Atoi(f[1])
	}
	var out []int
	for p := range parent {
		for q, hops := parent[p], 0; q > 1 && hops < 64; q, hops = parent[q], hops+1 {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// supervisorPids returns the supervisor's own processes: p itself, and for
// s6 also its s6-supervise children.
func supervisorPids(p *proc) []int {
	out := []int{p.pid()}
	if !p.k.multi {
		return out
	}
	for _, q := range pids() {
		f := statFields(fmt.Sprintf("/proc/%d/stat", q))
		if len(f) < 2 || f[1] != strconv.Itoa(p.pid()) {
			continue
		}
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", q)); strings.TrimSpace(string(b)) == "s6-supervise" {
			out = append(out, q)
		}
	}
	return out
}

// svcDescendants counts live (not zombie) svc processes below pid.
func svcDescendants(pid int) int {
	parent := map[int]int{}
	isSvc := map[int]bool{}
	for _, p := range pids() {
		f := statFields(fmt.Sprintf("/proc/%d/stat", p))
		if len(f) < 2 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		parent[p], _ = strconv.Atoi(f[1])
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); exe == svcBin {
			isSvc[p] = true
		}
	}
	n := 0
	for p := range isSvc {
		for q, hops := parent[p], 0; q > 1 && hops < 64; q, hops = parent[q], hops+1 {
			if q == pid {
				n++
				break
			}
		}
	}
	return n
}

type usage struct {
	rssKB, hwmKB int64
	pssKB        int64 // /proc/PID/smaps_rollup: shared pages split among their users
	ticks        int64 // utime+stime, whole process, all threads, dead ones too
	schedNs      int64 // sum of /proc/PID/task/*/schedstat run time: ns resolution
}

func sample(pid int) (u usage, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			switch f[0] {
			case "VmRSS:":
				u.rssKB, _ = strconv.ParseInt(f[1], 10, 64)
			case "VmHWM:":
				u.hwmKB, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				u.pssKB, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	f := statFields(fmt.Sprintf("/proc/%d/stat", pid))
	if len(f) < 13 {
		return u, errors.New("short /proc/PID/stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	u.ticks = ut + st
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, t := range tasks {
		if b, err := os.ReadFile(t); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				u.schedNs += n
			}
		}
	}
	return u, nil
}

// sampleAll sums sample over ps (the sum's VmHWM is the sum of each one's).
// It also returns the first one's own usage, and how many it could read.
func sampleAll(ps []int) (sum, first usage, n int) {
	for i, pid := range ps {
		u, err := sample(pid)
		if err != nil {
			continue
		}
		if i == 0 {
			first = u
		}
		sum.rssKB += u.rssKB
		sum.hwmKB += u.hwmKB
		sum.pssKB += u.pssKB
		sum.ticks += u.ticks
		sum.schedNs += u.schedNs
		n++
	}
	return sum, first, n
}

// ---------------------------------------------------------------------------
// Stamp files: "S|E PID NS" lines from svc.

type stampLine struct {
	kind byte
	pid  int
	ns   int64
}

func readStamps(path string) []stampLine {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []stampLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 3 {
			continue // a line being written right now
		}
		pid, _ := strconv.Atoi(fs[1])
		ns, _ := strconv.ParseInt(fs[2], 10, 64)
		out = append(out, stampLine{fs[0][0], pid, ns})
	}
	return out
}

// countStarts counts "S" lines cheaply, for polling.
func countStarts(path string) int {
	b, _ := os.ReadFile(path)
	n := bytes.Count(b, []byte("\nS "))
	if bytes.HasPrefix(b, []byte("S ")) {
		n++
	}
	return n
}

// ---------------------------------------------------------------------------
// Test 1: restart latency.

type restartResult struct {
	gapsMs []float64 // sorted
	err    string
}

func restartTest(k kind) restartResult {
	tag := k.name + "-restart"
	stamps := filepath.Join(dir, tag+".stamps")
	os.Remove(stamps)
	argv := k.conf(tag, "exit", stamps, 1, true)
	want := restartWarmup + restarts + 1
	logf("%s: restart latency, %d restarts after %d warmup (at most %ds)", k.name, restarts, restartWarmup, restartMaxSecs)
	p := start(k, tag, argv)
	deadline := time.Now().Add(time.Duration(restartMaxSecs) * time.Second)
	for countStarts(stamps) < want && time.Now().Before(deadline) && !p.exited() {
		time.Sleep(20 * time.Millisecond)
	}
	early := p.exited()
	p.stop(15 * time.Second)
	killStrays()

	gaps := restartGaps(stamps)
	r := restartResult{}
	if early {
		r.err = fmt.Sprintf("%s exited during the test (see %s.out)", k.name, tag)
	}
	if len(gaps) <= restartWarmup {
		if r.err == "" {
			r.err = fmt.Sprintf("only %d restarts", len(gaps))
		}
		return r
	}
	gaps = gaps[restartWarmup:]
	if len(gaps) > restarts {
		gaps = gaps[:restarts]
	}
	sort.Float64s(gaps)
	r.gapsMs = gaps
	logf("%s: %d restarts, p50 %.3f ms, p99 %.3f ms, max %.3f ms", k.name, len(gaps),
		pct(gaps, 50), pct(gaps, 99), gaps[len(gaps)-1])
	return r
}

// restartGaps returns each next run's start minus the previous run's exit
// stamp, in ms, in the order they happened.
func restartGaps(stamps string) []float64 {
	var gaps []float64
	var lastE stampLine
	for _, s := range readStamps(stamps) {
		switch {
		case s.kind == 'E':
			lastE = s
		case s.kind == 'S' && lastE.kind == 'E' && s.pid != lastE.pid:
			gaps = append(gaps, float64(s.ns-lastE.ns)/1e6)
			lastE = stampLine{}
		}
	}
	return gaps
}

// floorTest runs floor.c (fork, exec, waitpid; no supervisor): the machine's
// own cost of a restart, to read the absolute numbers against.
func floorTest(bin string) restartResult {
	stamps := filepath.Join(dir, "floor.stamps")
	os.Remove(stamps)
	cmd := exec.Command(bin, strconv.Itoa(restartWarmup+restarts+1), svcBin, stamps)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if out, err := cmd.CombinedOutput(); err != nil {
		return restartResult{err: fmt.Sprintf("floor: %v %s", err, out)}
	}
	gaps := restartGaps(stamps)
	if len(gaps) <= restartWarmup {
		return restartResult{err: "floor: too few restarts"}
	}
	gaps = gaps[restartWarmup:]
	sort.Float64s(gaps)
	logf("floor (C posix_spawn/waitpid loop): %d restarts, p50 %.3f ms, p99 %.3f ms", len(gaps), pct(gaps, 50), pct(gaps, 99))
	return restartResult{gapsMs: gaps}
}

// pct is the nearest-rank percentile of sorted xs.
func pct(xs []float64, p float64) float64 {
	i := int(math.Ceil(p/100*float64(len(xs)))) - 1
	if i < 0 {
		i = 0
	}
	return xs[i]
}

// ---------------------------------------------------------------------------
// Tests 2-4: 1,000 services.

type manyResult struct {
	p          *proc
	spawnMs    float64
	running    int // svc descendants once all stamps were in
	err        string
	sup        []int // the supervisor's own processes, as at the start of the idle window
	before     usage // summed over sup
	after      usage // summed over sup
	top        usage // the supervisor's top process alone (s6: s6-svscan), at the end
	nAfter     int   // how many of sup were still there at the end
	runningEnd int
	startsEnd  int
	stopTime   time.Duration
	stopClean  bool
}

// waitPIDHeadroom waits while the system is short of PIDs: other jobs on a
// shared machine may hold thousands of zombies.
func waitPIDHeadroom(need int) {
	readInt := func(path string, field int) int {
		b, _ := os.ReadFile(path)
		f := strings.FieldsFunc(string(b), func(r rune) bool { return r == ' ' || r == '/' || r == '\n' })
		if field >= len(f) {
			return 0
		}
		n, _ := strconv.Atoi(f[field])
		return n
	}
	max := readInt("/proc/sys/kernel/pid_max", 0)
	for i := 0; ; i++ {
		used := readInt("/proc/loadavg", 4) // tasks (threads and zombies included)
		if max == 0 || used+need < max*9/10 {
			return
		}
		if i == 0 {
			logf("waiting: %d tasks exist, %d more would near pid_max %d", used, need, max)
		}
		if i >= 120 {
			logf("going ahead anyway")
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func spawnTest(k kind) *manyResult {
	tag := k.name + "-many"
	stamps := filepath.Join(dir, tag+".stamps")
	os.Remove(stamps)
	argv := k.conf(tag, "pause", stamps, services, false)
	need := services + 200
	if k.multi {
		need += services // one s6-supervise per service
	}
	waitPIDHeadroom(need)
	logf("%s: starting %d services", k.name, services)
	r := &manyResult{}
	p := start(k, tag, argv)
	r.p = p
	deadline := time.Now().Add(time.Duration(spawnTimeoutSec) * time.Second)
	for countStarts(stamps) < services && time.Now().Before(deadline) && !p.exited() {
		time.Sleep(10 * time.Millisecond)
	}
	var starts []int64
	for _, s := range readStamps(stamps) {
		if s.kind == 'S' {
			starts = append(starts, s.ns)
		}
	}
	if p.exited() {
		r.err = fmt.Sprintf("%s exited (see %s.out)", k.name, tag)
		return r
	}
	if len(starts) < services {
		r.err = fmt.Sprintf("only %d of %d started after %ds", len(starts), services, spawnTimeoutSec)
		logf("%s: %s", k.name, r.err)
		return r
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	r.spawnMs = float64(starts[services-1]-p.t0) / 1e6
	r.running = svcDescendants(p.pid())
	logf("%s: %d services started in %.1f ms; %d svc processes below pid %d",
		k.name, services, r.spawnMs, r.running, p.pid())
	return r
}

// ---------------------------------------------------------------------------

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sig
		logf("driver: %v: stopping everything", s)
		cleanupAll()
		os.Exit(130)
	}()

	kinds := []kind{tend, supervisord, s6}

	// 1. One at a time: each has the machine to itself.
	rr := map[string]restartResult{}
	if f := os.Getenv("FLOOR"); f != "" {
		rr["floor"] = floorTest(f)
	}
	for _, k := range kinds {
		rr[k.name] = restartTest(k)
	}

	// 2. One at a time too (spawning is CPU-bound); the first one then sits
	// idle while the second spawns, but its idle window has not begun yet.
	mr := map[string]*manyResult{}
	for _, k := range kinds {
		mr[k.name] = spawnTest(k)
	}

	// 3+4. All idle windows at once: an idle supervisor sleeping in the
	// kernel is not charged for work done by another process.
	time.Sleep(2 * time.Second) // let them settle (GC after the spawn burst, lazy logs)
	for _, k := range kinds {
		r := mr[k.name]
		if r.err == "" {
			r.sup = supervisorPids(r.p)
			r.before, _, _ = sampleAll(r.sup)
		}
	}
	logf("idle window: %d s, all supervisors at once", idleSeconds)
	time.Sleep(time.Duration(idleSeconds) * time.Second)
	for _, k := range kinds {
		r := mr[k.name]
		if r.err != "" {
			continue
		}
		if r.p.exited() {
			r.err = fmt.Sprintf("%s exited during the idle window", k.name)
			continue
		}
		r.after, r.top, r.nAfter = sampleAll(r.sup)
		r.runningEnd = svcDescendants(r.p.pid())
		r.startsEnd = countStarts(filepath.Join(dir, k.name+"-many.stamps"))
		logf("%s: idle (%d of %d supervisor processes): %d ticks, %.2f ms schedstat; VmRSS %d → %d kB, VmHWM %d kB, Pss %d kB; top process VmRSS %d kB; %d svc running, %d starts in all",
			k.name, r.nAfter, len(r.sup), r.after.ticks-r.before.ticks, float64(r.after.schedNs-r.before.schedNs)/1e6,
			r.before.rssKB, r.after.rssKB, r.after.hwmKB, r.after.pssKB, r.top.rssKB, r.runningEnd, r.startsEnd)
	}

	// All stop at once; the time each takes is reported on the side.
	var wg sync.WaitGroup
	for _, k := range kinds {
		r := mr[k.name]
		if r.p == nil {
			continue
		}
		wg.Add(1)
		go func(name string, r *manyResult) {
			defer wg.Done()
			r.stopTime, r.stopClean = r.p.stop(stopGrace)
			logf("%s: stopped %d services in %.0f ms (graceful: %v)", name, services,
				float64(r.stopTime)/1e6, r.stopClean)
		}(k.name, r)
	}
	wg.Wait()
	if n := killStrays(); n > 0 {
		logf("killed %d svc processes left behind by the supervisors", n)
	}

	printTable(rr, mr)
}

// ---------------------------------------------------------------------------

func printTable(rr map[string]restartResult, mr map[string]*manyResult) {
	type row struct {
		metric, target string
		val            func(name string) (float64, bool)
		format         string
	}
	lat := func(p float64) func(string) (float64, bool) {
		return func(n string) (float64, bool) {
			r := rr[n]
			if len(r.gapsMs) == 0 {
				return 0, false
			}
			return pct(r.gapsMs, p), true
		}
	}
	many := func(f func(r *manyResult) float64) func(string) (float64, bool) {
		return func(n string) (float64, bool) {
			r := mr[n]
			if r == nil || r.err != "" {
				return 0, false
			}
			return f(r), true
		}
	}
	tickMs := 1000 / float64(clkTck)
	rows := []row{
		{"restart latency p50 (ms)", "", lat(50), "%.3f"},
		{"restart latency p99 (ms)", "≤ 5", lat(99), "%.3f"},
		{"restarts measured", "", func(n string) (float64, bool) {
			return float64(len(rr[n].gapsMs)), len(rr[n].gapsMs) > 0
		}, "%.0f"},
		{fmt.Sprintf("time to %d services running (ms)", services), "", many(func(r *manyResult) float64 { return r.spawnMs }), "%.1f"},
		{fmt.Sprintf("VmRSS with %d services (MiB; s6: sum)", services), "≤ 40", many(func(r *manyResult) float64 { return float64(r.after.rssKB) / 1024 }), "%.1f"},
		{fmt.Sprintf("VmHWM with %d services (MiB; s6: sum)", services), "≤ 40", many(func(r *manyResult) float64 { return float64(r.after.hwmKB) / 1024 }), "%.1f"},
		{fmt.Sprintf("PSS with %d services (MiB; s6: sum)", services), "", many(func(r *manyResult) float64 { return float64(r.after.pssKB) / 1024 }), "%.1f"},
		{"VmRSS of the top process alone (MiB; s6: s6-svscan)", "", many(func(r *manyResult) float64 { return float64(r.top.rssKB) / 1024 }), "%.1f"},
		{fmt.Sprintf("CPU time idle %d s, utime+stime (ms; s6: sum)", idleSeconds), fmt.Sprintf("≤ %s", fmtNum(10*float64(idleSeconds)/60, "%.0f")),
			many(func(r *manyResult) float64 { return float64(r.after.ticks-r.before.ticks) * tickMs }), "%.0f"},
		{fmt.Sprintf("CPU time idle %d s, schedstat (ms; s6: sum)", idleSeconds), "",
			many(func(r *manyResult) float64 { return float64(r.after.schedNs-r.before.schedNs) / 1e6 }), "%.2f"},
		{fmt.Sprintf("graceful stop of %d services (ms)", services), "", func(n string) (float64, bool) {
			r := mr[n]
			if r == nil || r.p == nil || !r.stopClean {
				return 0, false
			}
			return float64(r.stopTime) / 1e6, true
		}, "%.0f"},
	}
	fmt.Println("| metric | tend | supervisord | s6 | tend / supervisord | tend / s6 | tend target |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---|")
	for _, r := range rows {
		a, aok := r.val("tend")
		b, bok := r.val("supervisord")
		c, cok := r.val("s6")
		cell := func(v float64, ok bool) string {
			if !ok {
				return "n/a"
			}
			return fmtNum(v, r.format)
		}
		ratio := func(b float64, bok bool) string {
			switch {
			case r.metric == "restarts measured":
				return "—"
			case aok && bok && b != 0:
				return fmtRatio(a / b)
			case aok && bok && a == 0 && b == 0:
				return "—"
			}
			return "n/a"
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", r.metric, cell(a, aok), cell(b, bok), cell(c, cok),
			ratio(b, bok), ratio(c, cok), r.target)
	}
	if f, ok := rr["floor"]; ok {
		if f.err != "" {
			fmt.Printf("\n%s\n", f.err)
		} else {
			fmt.Printf("\nRestart floor of this machine (floor.c: posix_spawn and waitpid in a C loop, no supervisor):"+
				" p50 %.3f ms, p99 %.3f ms over %d restarts.\n", pct(f.gapsMs, 50), pct(f.gapsMs, 99), len(f.gapsMs))
		}
	}
	for _, n := range []string{"tend", "supervisord", "s6"} {
		if e := rr[n].err; e != "" {
			fmt.Printf("\n%s restart test: %s\n", n, e)
		}
		if r := mr[n]; r != nil && r.err != "" {
			fmt.Printf("\n%s %d-service test: %s\n", n, services, r.err)
		}
		if r := mr[n]; r != nil && r.p != nil && r.p.exited() && !r.stopClean {
			fmt.Printf("\n%s had not stopped %d services %v after the stop request: SIGKILLed.\n", n, services, stopGrace)
		}
		if r := mr[n]; r != nil && r.err == "" && r.nAfter != len(r.sup) {
			fmt.Printf("\n%s: %d supervisor processes at the start of the idle window, %d at its end\n", n, len(r.sup), r.nAfter)
		}
		if r := mr[n]; r != nil && r.err == "" && (r.running != services || r.runningEnd != services || r.startsEnd != services) {
			fmt.Printf("\n%s: %d svc processes after the spawn, %d at the end of the idle window, %d starts in all (expected %d each)\n",
				n, r.running, r.runningEnd, r.startsEnd, services)
		}
	}
}

func fmtNum(v float64, f string) string { return fmt.Sprintf(f, v) }

func fmtRatio(r float64) string {
	switch {
	case r == 0:
		return "0×"
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.2f×", r)
	default:
		return fmt.Sprintf("%.4f×", r)
	}
}
