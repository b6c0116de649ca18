// Command driver runs the tend vs supervisord vs s6 (vs runit) benchmark;
// bench/supervisor/run.sh builds it with the svc helper and calls it. It is a
// benchmark tool, not part of tend, so it may use os/exec. Markdown goes to
// stdout, progress to stderr.
//
// Every time is CLOCK_MONOTONIC, read by svc (svc.c) in the service itself and
// by the driver just before it launches a supervisor, sends a command or
// fires a trigger, so the driver's polling interval never enters a result.
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
	dir           = mustEnv("BENCH_DIR") // private temp dir; everything we start has it in its argv or cwd
	tendBin       = mustEnv("TEND")
	supervisordB  = os.Getenv("SUPERVISORD") // empty: supervisord is not run
	svcBin        = mustEnv("SVC")
	s6Svscan      = os.Getenv("S6_SVSCAN") // empty: s6 is not run
	s6Svscanctl   = filepath.Join(filepath.Dir(s6Svscan), "s6-svscanctl")
	s6Svc         = filepath.Join(filepath.Dir(s6Svscan), "s6-svc")
	supervisorctl = envStr("SUPERVISORCTL", filepath.Join(filepath.Dir(supervisordB), "supervisorctl"))
	runsvdirBin   = os.Getenv("RUNSVDIR") // empty: runit is not run

	idleSeconds      = envInt("IDLE_SECONDS", 60)
	restarts         = envInt("RESTARTS", 1000)
	restartWarmup    = envInt("RESTART_WARMUP", 5)
	restartMaxSecs   = envInt("RESTART_MAX_SECONDS", 30)
	services         = envInt("SERVICES", 1000)
	spawnTimeoutSec  = envInt("SPAWN_TIMEOUT", 120)
	bigServices      = envInt("BIG_SERVICES", 10000)
	bigTimeoutSec    = envInt("BIG_SPAWN_TIMEOUT", 180)
	bigKinds         = envList("BIG_KINDS", "tend s6 supervisord")
	kinds            = envList("KINDS", "tend supervisord s6")                 // the restart test and the N- and BIG-service runs
	manyKinds        = envList("MANY_KINDS", "tend tend-files supervisord s6") // of those, the N-service run
	crashServices    = envInt("CRASH_SERVICES", 200)
	crashRounds      = envInt("CRASH_ROUNDS", 3)
	crashSettleMs    = envInt("CRASH_SETTLE_MS", 1500)
	crashKinds       = envList("CRASH_KINDS", "tend s6 s6-plain runit supervisord")
	reloadOn         = envInt("RELOAD", 1) != 0
	reloadTimeoutSec = envInt("RELOAD_TIMEOUT", 120)
	reloadRounds     = envInt("RELOAD_ROUNDS", 3)
	runScript        = envStr("RUN_SCRIPT", "direct") // s6/runit run files: direct (#!svc) or sh (#!/bin/sh + exec)
	s6Notify         = envInt("S6_NOTIFY", 1) != 0    // s6 services notify readiness (notification-fd 3)
	bigTendOutput    = envStr("BIG_TEND_OUTPUT", "auto")
	// tend's restart delay. "0s" passes config validation but then tend
	// never restarts the service (it waits in "restarting" for a timer
	// that is not armed; supervise/runs.go arms one only for a delay > 0):
	// 1ns is the smallest delay that works.
	tendDelay    = envStr("TEND_RESTART_DELAY", "1ns")
	tendLogLevel = envStr("TEND_LOG_LEVEL", "warn") // info logs every transition (to the *.out files)
	floorFdsRuns = envInt("FLOOR_FDS_RESTARTS", 200)
	nofileSoft   = envInt("NOFILE_SOFT", 1024)
	nofileHard   = envInt("NOFILE_HARD", 1024)
	clkTck       = envInt("CLK_TCK", 100)

	// supervisord stops 1,000 services at its spawn pace: 10-40 s here.
	stopGraceMin = 60 * time.Second
)

func mustEnv(k string) string {
	v := os.Getenv(k)
	if v == "" {
		fmt.Fprintf(os.Stderr, "driver: %s is not set (run bench/supervisor/run.sh)\n", k)
		os.Exit(2)
	}
	return v
}

func envStr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envList(k, def string) map[string]bool {
	v, ok := os.LookupEnv(k)
	if !ok {
		v = def
	}
	m := map[string]bool{}
	for _, f := range strings.Fields(v) {
		m[f] = true
	}
	return m
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

var floorFds int // open fds of the second floor run

var bigTendOutputUsed string

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
// What to run: a spec, written by each supervisor's conf into its own format.

type spec struct {
	tag     string // file prefix in dir: config, stamps, output
	mode    string // svc mode: exit, pause or crash
	stamps  string // the stamp file all services append to
	n       int
	restart bool   // zero-delay restarts (the service exits)
	trig    string // crash: the trigger directory
	notify  bool   // s6: readiness notification on fd 3 (notification-fd)
	control bool   // a control socket (tend) / RPC socket (supervisord)
	output  string // tend: output = (default "prefix")
	names   map[int]string
	path    string // the config file (tend, supervisord) or scan dir (s6, runit)
}

func svcName(i int) string { return fmt.Sprintf("s%04d", i) }

// svcTag is what service i writes in its stamps: its name, or the name of
// its current definition after a reload test changed it.
func (s *spec) svcTag(i int) string {
	if t, ok := s.names[i]; ok {
		return t
	}
	return svcName(i)
}

func (s *spec) args(i int) []string {
	a := []string{s.mode, s.stamps, s.svcTag(i)}
	if s.mode == "crash" {
		a = append(a, s.trig)
	}
	if s.notify && s.mode != "exit" {
		a = append(a, "3")
	}
	return a
}

func (s *spec) sock() string { return filepath.Join(dir, s.tag+".sock") }

// writeAtomic replaces path, so a supervisor reading it never sees half.
func writeAtomic(path string, data []byte, mode os.FileMode) {
	tmp := path + ".new"
	must(os.WriteFile(tmp, data, mode))
	must(os.Rename(tmp, path))
}

// ---------------------------------------------------------------------------
// The supervisors.

type kind struct {
	name string
	// conf writes the config for s and returns the supervisor's argv.
	conf func(s *spec) []string
	// child: the supervisor is a tree of its own processes (s6: s6-svscan and
	// one s6-supervise per service; runit: runsvdir and one runsv each),
	// whose per-service processes have this comm. Services are then
	// grandchildren.
	child string
	// stopReq asks for a graceful stop of the supervisor and all it runs.
	stopReq func(p *proc)
	// redefine writes service i's new definition (from p.spec) and returns
	// the command that makes the supervisor apply it; nil if not supported.
	redefine func(p *proc, i int) []string
}

func (k kind) multi() bool { return k.child != "" }

func termStop(p *proc) { p.cmd.Process.Signal(syscall.SIGTERM) }

// tendGlobals is the top of a tend config: its own settings.
func tendGlobals(b *strings.Builder, s *spec) {
	// warn: no per-transition log lines, as supervisord's loglevel=warn.
	fmt.Fprintf(b, "log_level = %q\n", tendLogLevel)
	if s.control {
		fmt.Fprintf(b, "control_socket = %q\n", s.sock())
	} else {
		b.WriteString("control_socket = \"\"\n")
	}
}

// tendService is service i's [services.x] table.
func tendService(b *strings.Builder, s *spec, i int) {
	fmt.Fprintf(b, "\n[services.%s]\ncommand = [%q", svcName(i), svcBin)
	for _, a := range s.args(i) {
		fmt.Fprintf(b, ", %q", a)
	}
	b.WriteString("]\nrestart = \"always\"\n")
	if s.output != "" && s.output != "prefix" {
		fmt.Fprintf(b, "output = %q\n", s.output)
	}
	if s.restart {
		fmt.Fprintf(b, "backoff = { type = \"fixed\", delay = %q }\n"+
			"crash_loop = { max_restarts = 1000000, window = \"1s\", backoff = %q }\n", tendDelay, tendDelay)
	}
}

func tendConf(s *spec) []byte {
	var b strings.Builder
	tendGlobals(&b, s)
	for i := 0; i < s.n; i++ {
		tendService(&b, s, i)
	}
	return []byte(b.String())
}

var tend = kind{
	name: "tend",
	conf: func(s *spec) []string {
		s.path = filepath.Join(dir, s.tag+".toml")
		writeAtomic(s.path, tendConf(s), 0o644)
		return []string{tendBin, "--config", s.path}
	},
	stopReq: termStop,
	redefine: func(p *proc, i int) []string {
		writeAtomic(p.spec.path, tendConf(p.spec), 0o644)
		return []string{tendBin, "ctl", "--socket", p.spec.sock(), "reload"}
	},
}

// tend-files is tend with the same services one per file, as a base
// image's services dropped into a directory: the main file has tend's
// settings and include = ["TAG.d/*.toml"]; a reload test replaces the one
// changed service's file (atomically) and runs the same `tend ctl reload`.
var tendFiles = kind{
	name: "tend-files",
	conf: func(s *spec) []string {
		s.path = filepath.Join(dir, s.tag+".toml")
		d := filepath.Join(dir, s.tag+".d")
		must(os.RemoveAll(d))
		must(os.Mkdir(d, 0o755))
		for i := 0; i < s.n; i++ {
			writeAtomic(tendServiceFile(s, i), tendServiceConf(s, i), 0o644)
		}
		var b strings.Builder
		tendGlobals(&b, s)
		fmt.Fprintf(&b, "include = [%q]\n", s.tag+".d/*.toml")
		writeAtomic(s.path, []byte(b.String()), 0o644)
		return []string{tendBin, "--config", s.path}
	},
	stopReq: termStop,
	redefine: func(p *proc, i int) []string {
		writeAtomic(tendServiceFile(p.spec, i), tendServiceConf(p.spec, i), 0o644)
		return []string{tendBin, "ctl", "--socket", p.spec.sock(), "reload"}
	},
}

func tendServiceFile(s *spec, i int) string {
	return filepath.Join(dir, s.tag+".d", svcName(i)+".toml")
}

func tendServiceConf(s *spec, i int) []byte {
	var b strings.Builder
	tendService(&b, s, i)
	return []byte(b.String())
}

func supervisordConf(s *spec) []byte {
	var b strings.Builder
	// supervisord holds 3 fds per child (two pipes, the log file) and
	// raises RLIMIT_NOFILE to minfds if it is lower. minfds stays at its
	// default of 1024 when the limit is high enough already: each child
	// closes fds 3..minfds one by one in Python before its exec, which
	// slows every spawn.
	// (NOFILE_SOFT comes from run.sh: Go raises the driver's own soft
	// limit, and lowers it again for its children.) minfds above the hard
	// limit would stop supervisord at once; below it, it runs out of fds
	// after about a third of the hard limit in services.
	minfds := 1024
	if need := 3*s.n + 64; nofileSoft < need && nofileHard >= need {
		minfds = need
	}
	fmt.Fprintf(&b, "[supervisord]\nnodaemon=true\nloglevel=warn\nlogfile=%s\npidfile=%s\nminfds=%d\nminprocs=%d\n",
		filepath.Join(dir, s.tag+".supervisord.log"), filepath.Join(dir, s.tag+".pid"), minfds, s.n+256)
	if s.control {
		fmt.Fprintf(&b, "\n[unix_http_server]\nfile=%s\n\n[rpcinterface:supervisor]\n"+
			"supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"+
			"[supervisorctl]\nserverurl=unix://%s\n", s.sock(), s.sock())
	}
	for i := 0; i < s.n; i++ {
		// One [program] per service, as tend has one [services.x] each.
		fmt.Fprintf(&b, "\n[program:%s]\ncommand=%s %s\nstartsecs=0\nautorestart=true\nstartretries=1000000\n"+
			"stdout_logfile=/dev/null\nredirect_stderr=true\n", svcName(i), svcBin, strings.Join(s.args(i), " "))
	}
	return []byte(b.String())
}

var supervisord = kind{
	name: "supervisord",
	conf: func(s *spec) []string {
		s.path = filepath.Join(dir, s.tag+".conf")
		writeAtomic(s.path, supervisordConf(s), 0o644)
		return []string{supervisordB, "-n", "-c", s.path}
	},
	stopReq: termStop,
	redefine: func(p *proc, i int) []string {
		writeAtomic(p.spec.path, supervisordConf(p.spec), 0o644)
		// update = reread, then stop, remove, add and start the changed
		// groups only; a SIGHUP would restart every program.
		return []string{supervisorctl, "-c", p.spec.path, "update"}
	},
}

// runFile is the `run` of an s6 or runit service directory. "direct" (the
// default): "#!SVC" and svc's arguments on the next line, so the kernel execs
// svc itself and a start costs one exec, as with tend and supervisord. "sh":
// the usual "#!/bin/sh" and `exec svc ...`, one exec (of /bin/sh) more.
func runFile(s *spec, i int) []byte {
	args := strings.Join(s.args(i), " ")
	if runScript == "sh" {
		return []byte(fmt.Sprintf("#!/bin/sh\nexec %s %s\n", svcBin, args))
	}
	return []byte(fmt.Sprintf("#!%s\n%s\n", svcBin, args))
}

// scanDir writes one service directory per service, holding only `run`.
func scanDir(s *spec) string {
	s.path = filepath.Join(dir, s.tag+".scan")
	must(os.RemoveAll(s.path))
	must(os.Mkdir(s.path, 0o755))
	for i := 0; i < s.n; i++ {
		sd := filepath.Join(s.path, svcName(i))
		must(os.Mkdir(sd, 0o755))
		must(os.WriteFile(filepath.Join(sd, "run"), runFile(s, i), 0o755))
		if s.notify {
			must(os.WriteFile(filepath.Join(sd, "notification-fd"), []byte("3\n"), 0o644))
		}
	}
	return s.path
}

// s6-svscan's -c (most services it will supervise) defaults to 500 in s6
// 2.11; it gets at least n.
var s6 = kind{
	name:  "s6",
	child: "s6-supervise",
	conf: func(s *spec) []string {
		return []string{s6Svscan, "-c", strconv.Itoa(max(s.n, 500)), scanDir(s)}
	},
	stopReq: func(p *proc) {
		// s6's documented way to bring the whole tree down.
		if out, err := exec.Command(s6Svscanctl, "-t", p.spec.path).CombinedOutput(); err != nil {
			logf("%s: s6-svscanctl -t: %v %s", p.name, err, out)
		}
	},
	redefine: func(p *proc, i int) []string {
		// s6 has no config to reload: a service's definition is its
		// directory, and ./run is read at each start. The operator edits
		// the one run file and restarts that one service.
		sd := filepath.Join(p.spec.path, svcName(i))
		writeAtomic(filepath.Join(sd, "run"), runFile(p.spec, i), 0o755)
		return []string{s6Svc, "-r", sd}
	},
}

// runit: runsvdir SCANDIR starts one runsv per service directory (at most
// 1,000 of them), which runs ./run. runsvdir on SIGHUP sends SIGTERM to every
// runsv, which stops its service and exits once it is down.
var runit = kind{
	name:  "runit",
	child: "runsv",
	conf: func(s *spec) []string {
		return []string{runsvdirBin, scanDir(s)}
	},
	stopReq: func(p *proc) { p.cmd.Process.Signal(syscall.SIGHUP) },
}

// s6-plain is s6 for the mass crash without readiness notification. s6
// 2.11.3.2's s6-supervise waits 1 s after every death before it starts ./run
// again, unless the service notified readiness (notification-fd) more than
// 1 s before it died; s6 (the column) uses notification-fd, s6-plain not.
var s6plain = func() kind { k := s6; k.name = "s6-plain"; return k }()

var allKinds = []kind{tend, tendFiles, supervisord, s6, s6plain, runit}

// isTend: a column of tend's own (no "tend / x" ratio for it).
func isTend(name string) bool { return strings.HasPrefix(name, "tend") }

func kindNames() []string {
	var out []string
	for _, k := range allKinds {
		out = append(out, k.name)
	}
	return out
}

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
	spec *spec
	cmd  *exec.Cmd
	done chan struct{}
	t0   int64 // CLOCK_MONOTONIC just before the fork
}

var (
	liveMu   sync.Mutex
	live     = map[*proc]bool{}
	stopping bool // set by cleanupAll: nothing new may start
)

func start(k kind, s *spec) *proc {
	argv := k.conf(s)
	out, err := os.Create(filepath.Join(dir, s.tag+".out"))
	must(err)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, so a Ctrl-C at the terminal reaches only the
	// driver, which then stops the supervisors in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{name: k.name, k: k, spec: s, cmd: cmd, done: make(chan struct{})}
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
// exit once they are gone, so their stop ends when they exit. s6 (s6-svscanctl
// -t) and runit (SIGHUP to runsvdir) are trees: their stop ends when the top
// process has exited and all its per-service supervisors and services are
// gone (polled every 2 ms).
func (p *proc) stop(grace time.Duration) (time.Duration, bool) {
	var tree []int
	if p.k.multi() {
		tree = descendants(p.pid())
	}
	t := time.Now()
	p.k.stopReq(p)
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
	if p.k.multi() {
		// s6-supervise and runsv stay in the top process's group
		// (services get their own sessions); none should be left, but
		// make sure.
		syscall.Kill(-p.pid(), syscall.SIGKILL)
	}
	liveMu.Lock()
	delete(live, p)
	liveMu.Unlock()
	return d, graceful
}

// kill ends a supervisor without asking (one that did not finish in time):
// it is stopped first (SIGSTOP to its group, so it forks nothing more), then
// it and everything below it are SIGKILLed by PID, and the driver waits for
// them to be gone. Other supervisors' services are left alone.
func (p *proc) kill() {
	syscall.Kill(-p.pid(), syscall.SIGSTOP)
	tree := descendants(p.pid())
	syscall.Kill(-p.pid(), syscall.SIGKILL)
	for _, pid := range tree {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-p.done
	liveMu.Lock()
	delete(live, p)
	liveMu.Unlock()
	for i := 0; i < 100 && len(alive(tree)) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
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
// dir (s6-supervise, runsv and the services they start: their argv holds only
// the service's name), and waits up to 5 s for the svc processes to be reaped
// by whoever adopted them. Returns how many svc processes it killed.
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
				syscall.Kill(pid, syscall.SIGKILL) // s6-supervise, runsv: not counted
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

// procTree is a snapshot of the live (not zombie) processes: parent of each,
// and which ones run svc.
type procTree struct {
	parent map[int]int
	isSvc  map[int]bool
}

func snapshot() procTree {
	t := procTree{parent: map[int]int{}, isSvc: map[int]bool{}}
	for _, p := range pids() {
		f := statFields(fmt.Sprintf("/proc/%d/stat", p))
		if len(f) < 2 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		t.parent[p], _ = strconv.Atoi(f[1])
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p)); exe == svcBin {
			t.isSvc[p] = true
		}
	}
	return t
}

func (t procTree) below(p, pid int) bool {
	for q, hops := t.parent[p], 0; q > 1 && hops < 64; q, hops = t.parent[q], hops+1 {
		if q == pid {
			return true
		}
	}
	return false
}

// descendants returns the live (not zombie) processes below pid.
func descendants(pid int) []int {
	t := snapshot()
	var out []int
	for p := range t.parent {
		if t.below(p, pid) {
			out = append(out, p)
		}
	}
	return out
}

// svcBelow returns the live (not zombie) svc processes below pid.
func svcBelow(pid int) []int {
	t := snapshot()
	var out []int
	for p := range t.isSvc {
		if t.below(p, pid) {
			out = append(out, p)
		}
	}
	return out
}

func svcDescendants(pid int) int { return len(svcBelow(pid)) }

// supervisorPids returns the supervisor's own processes: p itself, and for
// s6 and runit also its per-service children (s6-supervise, runsv).
func supervisorPids(p *proc) []int {
	out := []int{p.pid()}
	if !p.k.multi() {
		return out
	}
	for _, q := range pids() {
		f := statFields(fmt.Sprintf("/proc/%d/stat", q))
		if len(f) < 2 || f[1] != strconv.Itoa(p.pid()) {
			continue
		}
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", q)); strings.TrimSpace(string(b)) == p.k.child {
			out = append(out, q)
		}
	}
	return out
}

type usage struct {
	rssKB, hwmKB int64
	pssKB        int64 // /proc/PID/smaps_rollup: shared pages split among their users
	ticks        int64 // utime+stime, whole process, all threads, dead ones too
	schedNs      int64 // sum of /proc/PID/task/*/schedstat run time: ns resolution
	threads      int64
	fds          int64
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
			case "Threads:":
				u.threads, _ = strconv.ParseInt(f[1], 10, 64)
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
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		u.fds = int64(len(ents))
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
		sum.threads += u.threads
		sum.fds += u.fds
		n++
	}
	return sum, first, n
}

// ---------------------------------------------------------------------------
// Stamp files: "S|E PID NS [TAG]" lines from svc.

type stampLine struct {
	kind byte
	pid  int
	ns   int64
	tag  string
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
		if len(fs) != 3 && len(fs) != 4 {
			continue // a line being written right now
		}
		pid, _ := strconv.Atoi(fs[1])
		ns, _ := strconv.ParseInt(fs[2], 10, 64)
		s := stampLine{kind: fs[0][0], pid: pid, ns: ns}
		if len(fs) == 4 {
			s.tag = fs[3]
		}
		out = append(out, s)
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
	s := &spec{tag: k.name + "-restart", mode: "exit", n: 1, restart: true}
	s.stamps = filepath.Join(dir, s.tag+".stamps")
	os.Remove(s.stamps)
	want := restartWarmup + restarts + 1
	logf("%s: restart latency, %d restarts after %d warmup (at most %ds)", k.name, restarts, restartWarmup, restartMaxSecs)
	p := start(k, s)
	deadline := time.Now().Add(time.Duration(restartMaxSecs) * time.Second)
	for countStarts(s.stamps) < want && time.Now().Before(deadline) && !p.exited() {
		time.Sleep(20 * time.Millisecond)
	}
	early := p.exited()
	p.stop(15 * time.Second)
	killStrays()

	gaps := restartGaps(s.stamps)
	r := restartResult{}
	if early {
		r.err = fmt.Sprintf("%s exited during the test (see %s.out)", k.name, s.tag)
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
func floorTest(bin string, fds, runs int) restartResult {
	stamps := filepath.Join(dir, fmt.Sprintf("floor-%d.stamps", fds))
	os.Remove(stamps)
	cmd := exec.Command(bin, strconv.Itoa(restartWarmup+runs+1), svcBin, stamps, strconv.Itoa(fds))
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
	logf("floor (C posix_spawn/waitpid loop, %d open fds): %d restarts, p50 %.3f ms, p99 %.3f ms", fds, len(gaps), pct(gaps, 50), pct(gaps, 99))
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
// Tests 2-4 (and the reload test): N services, started, idle, stopped.

type manyResult struct {
	p          *proc
	n          int
	spawnMs    float64
	running    int // svc descendants once all stamps were in
	err        string
	capped     string // did not start all n in time: what it got
	sup        []int  // the supervisor's own processes, as at the start of the idle window
	before     usage  // summed over sup
	after      usage  // summed over sup
	top        usage  // the supervisor's top process alone (s6: s6-svscan), at the end
	nAfter     int    // how many of sup were still there at the end
	runningEnd int
	startsEnd  int
	stopTime   time.Duration
	stopClean  bool
	reload     *reloadResult
	hup        *reloadResult // tend only: the same through SIGHUP
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

func spawnTest(k kind, n int, timeoutSec int, control bool, output string) *manyResult {
	s := &spec{tag: fmt.Sprintf("%s-%d", k.name, n), mode: "pause", n: n, control: control, output: output,
		notify: k.name == "s6" && s6Notify}
	s.stamps = filepath.Join(dir, s.tag+".stamps")
	os.Remove(s.stamps)
	need := n + 200
	if k.multi() {
		need += n // one s6-supervise per service
	}
	waitPIDHeadroom(need)
	logf("%s: starting %d services (at most %d s)", k.name, n, timeoutSec)
	r := &manyResult{n: n}
	p := start(k, s)
	r.p = p
	deadline := time.Now().Add(time.Duration(timeoutSec) * time.Second)
	lastLog := time.Now()
	for countStarts(s.stamps) < n && time.Now().Before(deadline) && !p.exited() {
		time.Sleep(10 * time.Millisecond)
		if time.Since(lastLog) > 30*time.Second {
			logf("%s: %d of %d started", k.name, countStarts(s.stamps), n)
			lastLog = time.Now()
		}
	}
	var starts []int64
	for _, st := range readStamps(s.stamps) {
		if st.kind == 'S' {
			starts = append(starts, st.ns)
		}
	}
	if p.exited() {
		r.err = fmt.Sprintf("%s exited (see %s.out)", k.name, s.tag)
		return r
	}
	if len(starts) < n {
		r.capped = fmt.Sprintf("did not finish in %d s (%d of %d running)", timeoutSec, svcDescendants(p.pid()), n)
		r.err = r.capped
		logf("%s: %s", k.name, r.err)
		return r
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	r.spawnMs = float64(starts[n-1]-p.t0) / 1e6
	r.running = svcDescendants(p.pid())
	logf("%s: %d services started in %.1f ms; %d svc processes below pid %d",
		k.name, n, r.spawnMs, r.running, p.pid())
	return r
}

// idleAndStop runs the idle window for every result at once, then the reload
// test (if asked) one supervisor at a time, then stops them all at once.
func idleAndStop(kinds []kind, mr map[string]*manyResult, n int, reload bool) {
	// All idle windows at once: an idle supervisor sleeping in the kernel
	// is not charged for work done by another process.
	time.Sleep(2 * time.Second) // let them settle (GC after the spawn burst, lazy logs)
	for _, k := range kinds {
		r := mr[k.name]
		if r != nil && r.err == "" {
			r.sup = supervisorPids(r.p)
			r.before, _, _ = sampleAll(r.sup)
		}
	}
	logf("idle window with %d services: %d s, all supervisors at once", n, idleSeconds)
	time.Sleep(time.Duration(idleSeconds) * time.Second)
	for _, k := range kinds {
		r := mr[k.name]
		if r == nil || r.err != "" {
			continue
		}
		if r.p.exited() {
			r.err = fmt.Sprintf("%s exited during the idle window", k.name)
			continue
		}
		r.after, r.top, r.nAfter = sampleAll(r.sup)
		r.runningEnd = svcDescendants(r.p.pid())
		r.startsEnd = countStarts(r.p.spec.stamps)
		logf("%s: idle (%d of %d supervisor processes): %d ticks, %.2f ms schedstat; VmRSS %d → %d kB, VmHWM %d kB, Pss %d kB; top process VmRSS %d kB, %d threads, %d fds; %d svc running, %d starts in all",
			k.name, r.nAfter, len(r.sup), r.after.ticks-r.before.ticks, float64(r.after.schedNs-r.before.schedNs)/1e6,
			r.before.rssKB, r.after.rssKB, r.after.hwmKB, r.after.pssKB, r.top.rssKB, r.top.threads, r.top.fds, r.runningEnd, r.startsEnd)
	}

	if reload {
		for _, k := range kinds {
			r := mr[k.name]
			if r == nil || r.err != "" || k.redefine == nil {
				continue
			}
			r.reload = reloadSeries(r.p, n/2, "c", false)
			if isTend(k.name) {
				r.hup = reloadSeries(r.p, n/2+reloadRounds, "h", true)
			}
		}
	}

	// All stop at once; the time each takes is reported on the side.
	grace := max(stopGraceMin, time.Duration(n)*10*time.Millisecond)
	var wg sync.WaitGroup
	for _, k := range kinds {
		r := mr[k.name]
		if r == nil || r.p == nil || r.capped != "" {
			continue // a capped one was killed already
		}
		wg.Add(1)
		go func(name string, r *manyResult) {
			defer wg.Done()
			r.stopTime, r.stopClean = r.p.stop(grace)
			logf("%s: stopped %d services in %.0f ms (graceful: %v)", name, n,
				float64(r.stopTime)/1e6, r.stopClean)
		}(k.name, r)
	}
	wg.Wait()
	if k := killStrays(); k > 0 {
		logf("killed %d svc processes left behind by the supervisors", k)
	}
}

func manyPhase(kinds []kind, n, timeoutSec int, reload bool, tendOutput string) map[string]*manyResult {
	mr := map[string]*manyResult{}
	// Spawns one at a time (spawning is CPU-bound); the first one then sits
	// idle while the next spawns, but its idle window has not begun yet.
	for _, k := range kinds {
		r := spawnTest(k, n, timeoutSec, reload, tendOutput)
		mr[k.name] = r
		if r.err != "" && r.p != nil && !r.p.exited() {
			// Did not finish in time: not idle, so not measured further.
			logf("%s: killing it (it did not finish)", k.name)
			r.p.kill()
		}
	}
	idleAndStop(kinds, mr, n, reload)
	return mr
}

// ---------------------------------------------------------------------------
// The reload test: one service of the running N changes its definition.

type reloadResult struct {
	ms        float64 // from just before the command to the new process's start stamp (median of the rounds)
	cmdMs     float64 // until the command returned (median)
	msAll     []float64
	cmdAll    []float64
	untouched int // of the other n-1, how many kept their PID
	others    int // n-1
	extra     int // starts other than the changed service's
	how       string
	err       string
}

// reloadSeries runs RELOAD_ROUNDS reload tests, each changing the next
// service from first on; the times are the medians, untouched the fewest.
func reloadSeries(p *proc, first int, prefix string, hup bool) *reloadResult {
	var agg *reloadResult
	for round := 0; round < max(reloadRounds, 1); round++ {
		r := reloadTest(p, first+round, fmt.Sprintf("%s%d", prefix, round+1), hup)
		if r.err != "" {
			return r
		}
		if agg == nil {
			agg = r
		} else {
			agg.untouched = min(agg.untouched, r.untouched)
			agg.extra += r.extra
		}
		agg.msAll = append(agg.msAll, r.ms)
		agg.cmdAll = append(agg.cmdAll, r.cmdMs)
	}
	agg.ms, agg.cmdMs = median(agg.msAll), median(agg.cmdAll)
	return agg
}

// liveTags maps each service's tag to the PID of its live svc process (from
// the stamps, for the live svc processes below the supervisor).
func liveTags(p *proc) map[string]int {
	tagOf := map[int]string{}
	for _, s := range readStamps(p.spec.stamps) {
		if s.kind == 'S' {
			tagOf[s.pid] = s.tag
		}
	}
	out := map[string]int{}
	for _, pid := range svcBelow(p.pid()) {
		out[tagOf[pid]] = pid
	}
	return out
}

func reloadTest(p *proc, i int, version string, hup bool) *reloadResult {
	r := &reloadResult{others: p.spec.n - 1}
	oldTag := p.spec.svcTag(i)
	before := liveTags(p)
	if p.spec.names == nil {
		p.spec.names = map[int]string{}
	}
	newTag := svcName(i) + "-" + version
	p.spec.names[i] = newTag
	cmd := p.k.redefine(p, i)
	r.how = filepath.Base(cmd[0]) + " " + strings.Join(cmd[1:], " ")
	if hup {
		r.how = "SIGHUP"
	}
	logf("%s: reload test: %s of %d changed (%s)", p.name, svcName(i), p.spec.n, r.how)
	t := monoNs()
	if hup {
		p.cmd.Process.Signal(syscall.SIGHUP)
	} else {
		c := exec.Command(cmd[0], cmd[1:]...)
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out, err := c.CombinedOutput()
		r.cmdMs = float64(monoNs()-t) / 1e6
		if err != nil {
			r.err = fmt.Sprintf("%s: %v %s", r.how, err, bytes.TrimSpace(out))
			logf("%s: %s", p.name, r.err)
			return r
		}
	}
	var newStart int64
	deadline := time.Now().Add(time.Duration(reloadTimeoutSec) * time.Second)
	for newStart == 0 && time.Now().Before(deadline) {
		for _, s := range readStamps(p.spec.stamps) {
			if s.kind == 'S' && s.tag == newTag {
				newStart = s.ns
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	if newStart == 0 {
		r.err = fmt.Sprintf("the changed service did not start in %d s", reloadTimeoutSec)
		logf("%s: %s", p.name, r.err)
		return r
	}
	r.ms = float64(newStart-t) / 1e6
	// Anything else the reload did would have happened by now.
	time.Sleep(time.Second)
	after := liveTags(p)
	for tag, pid := range before {
		if tag != oldTag && after[tag] == pid {
			r.untouched++
		}
	}
	for _, s := range readStamps(p.spec.stamps) {
		if s.kind == 'S' && s.ns > t && s.tag != newTag {
			r.extra++
		}
	}
	logf("%s: the new %s ran %.1f ms after the reload began (command returned after %.1f ms); %d of %d others kept their PID; %d other starts",
		p.name, newTag, r.ms, r.cmdMs, r.untouched, r.others, r.extra)
	return r
}

// ---------------------------------------------------------------------------
// The mass crash: CRASH_SERVICES services exit non-zero at the same instant.

type crashResult struct {
	ms      []float64 // per round: trigger to the last service's new start
	exitsMs []float64 // per round: trigger to the last exit stamp
	cpuMs   []float64 // per round: the supervisor's CPU time (schedstat), trigger to all restarted
	err     string
}

// lockEx creates path and holds an exclusive flock on it.
func lockEx(path string) *os.File {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	must(err)
	must(syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	return f
}

func crashTest(k kind) crashResult {
	n := crashServices
	s := &spec{tag: k.name + "-crash", mode: "crash", n: n, restart: true, notify: k.name == "s6" && s6Notify}
	s.stamps = filepath.Join(dir, s.tag+".stamps")
	s.trig = filepath.Join(dir, s.tag+".trig")
	os.Remove(s.stamps)
	must(os.RemoveAll(s.trig))
	must(os.Mkdir(s.trig, 0o755))
	gen := 1
	lock := lockEx(filepath.Join(s.trig, "lock.1"))
	writeAtomic(filepath.Join(s.trig, "gen"), []byte("1\n"), 0o644)
	var r crashResult

	waitPIDHeadroom(3*n + 200)
	logf("%s: mass crash, %d services, %d rounds", k.name, n, crashRounds)
	p := start(k, s)
	defer func() {
		p.stop(30 * time.Second)
		lock.Close()
		killStrays()
	}()
	deadline := time.Now().Add(time.Duration(spawnTimeoutSec) * time.Second)
	for countStarts(s.stamps) < n && time.Now().Before(deadline) && !p.exited() {
		time.Sleep(10 * time.Millisecond)
	}
	if c := countStarts(s.stamps); c < n {
		r.err = fmt.Sprintf("only %d of %d started", c, n)
		return r
	}
	for round := 1; round <= crashRounds; round++ {
		// Settle: every service up for CRASH_SETTLE_MS (s6-supervise and
		// runsv wait 1 s before restarting one that ran less than 1 s),
		// and all n running.
		for i := 0; ; i++ {
			var last int64
			for _, st := range readStamps(s.stamps) {
				if st.kind == 'S' && st.ns > last {
					last = st.ns
				}
			}
			wait := time.Duration(last+int64(crashSettleMs)*1e6-monoNs()) * time.Nanosecond
			if wait <= 0 && svcDescendants(p.pid()) == n {
				break
			}
			if i > 200 || p.exited() {
				r.err = fmt.Sprintf("round %d: %d of %d running before the trigger", round, svcDescendants(p.pid()), n)
				return r
			}
			time.Sleep(max(wait, 50*time.Millisecond))
		}
		// The next generation waits on a new lock, taken before the
		// generation number changes; then the current lock is let go.
		sup := supervisorPids(p)
		before, _, _ := sampleAll(sup)
		gen++
		next := lockEx(filepath.Join(s.trig, fmt.Sprintf("lock.%d", gen)))
		writeAtomic(filepath.Join(s.trig, "gen"), []byte(fmt.Sprintf("%d\n", gen)), 0o644)
		t := monoNs()
		lock.Close() // releases the flock: all n wake and exit 1
		lock = next
		var lastS, lastE int64
		var starts, exits int
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			starts, exits, lastS, lastE = 0, 0, 0, 0
			for _, st := range readStamps(s.stamps) {
				if st.ns < t {
					continue
				}
				switch st.kind {
				case 'S':
					starts++
					lastS = max(lastS, st.ns)
				case 'E':
					exits++
					lastE = max(lastE, st.ns)
				}
			}
			if starts >= n {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if starts < n {
			r.err = fmt.Sprintf("round %d: %d of %d exited, %d restarted in 30 s", round, exits, n, starts)
			logf("%s: %s", k.name, r.err)
			return r
		}
		after, _, _ := sampleAll(sup)
		ms, ems := float64(lastS-t)/1e6, float64(lastE-t)/1e6
		cpu := float64(after.schedNs-before.schedNs) / 1e6
		r.ms = append(r.ms, ms)
		r.exitsMs = append(r.exitsMs, ems)
		r.cpuMs = append(r.cpuMs, cpu)
		logf("%s: round %d: all %d exited within %.1f ms of the trigger; all %d running again after %.1f ms; supervisor CPU %.1f ms",
			k.name, round, exits, ems, n, ms, cpu)
	}
	return r
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
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

	// What is not installed is not run (run.sh allows that only for the
	// supervisors left out of KINDS and CRASH_KINDS).
	for _, missing := range []struct {
		bin   string
		names []string
	}{{supervisordB, []string{"supervisord"}}, {s6Svscan, []string{"s6", "s6-plain"}}} {
		if missing.bin != "" {
			continue
		}
		for _, n := range missing.names {
			delete(kinds, n)
			delete(manyKinds, n)
			delete(bigKinds, n)
			delete(crashKinds, n)
		}
	}

	if limit := envInt("RUN_TIMEOUT", 1800); limit > 0 {
		// A safety net only: each part has its own cap.
		time.AfterFunc(time.Duration(limit)*time.Second, func() {
			logf("driver: RUN_TIMEOUT (%d s) reached: stopping everything, no table", limit)
			cleanupAll()
			os.Exit(1)
		})
	}

	var base []kind
	for _, k := range []kind{tend, supervisord, s6} {
		if kinds[k.name] {
			base = append(base, k)
		}
	}

	// 1. One at a time: each has the machine to itself.
	rr := map[string]restartResult{}
	if restarts > 0 {
		if f := os.Getenv("FLOOR"); f != "" {
			rr["floor"] = floorTest(f, 0, restarts)
			// The same with as many open fds as a one-process supervisor
			// holding two pipe ends per service would have at BIG_SERVICES
			// (or as many as the soft limit allows).
			if fds := min(2*max(bigServices, services), nofileSoft-64); fds > 0 && floorFdsRuns > 0 {
				floorFds = fds
				rr["floor-fds"] = floorTest(f, fds, floorFdsRuns)
			}
		}
		for _, k := range base {
			rr[k.name] = restartTest(k)
		}
	}

	// 2. The mass crash, one supervisor at a time.
	cr := map[string]crashResult{}
	if crashServices > 0 {
		for _, k := range allKinds {
			if !crashKinds[k.name] || (k.name == "runit" && runsvdirBin == "") {
				continue
			}
			cr[k.name] = crashTest(k)
		}
	}

	// 3. SERVICES (1,000): spawn, idle, reload, stop.
	var mr map[string]*manyResult
	if services > 0 {
		var ks []kind
		for _, k := range []kind{tend, tendFiles, supervisord, s6} {
			if manyKinds[k.name] && (kinds[k.name] || k.name == "tend-files" && kinds["tend"]) {
				ks = append(ks, k)
			}
		}
		mr = manyPhase(ks, services, spawnTimeoutSec, reloadOn, "prefix")
	}

	// 4. BIG_SERVICES (10,000): spawn (capped), idle, stop.
	var br map[string]*manyResult
	if bigServices > 0 {
		var ks []kind
		for _, k := range base {
			if bigKinds[k.name] {
				ks = append(ks, k)
			}
		}
		out := bigTendOutput
		if out == "auto" {
			// "prefix" holds two pipe ends per service in tend.
			out = "prefix"
			if nofileHard < 2*bigServices+1024 {
				out = "/dev/null"
				logf("tend at %d services: output = %q, since RLIMIT_NOFILE (%d) is too low for prefix (2 fds per service)",
					bigServices, out, nofileHard)
			}
		}
		bigTendOutputUsed = out
		br = manyPhase(ks, bigServices, bigTimeoutSec, false, out)
	}

	printTable(rr, cr, mr, br)
	logf("driver done")
}

// ---------------------------------------------------------------------------
// The table.

type cell struct {
	v    float64
	ok   bool
	text string // shown instead of v (and no ratio) when set
}

func val(v float64) cell     { return cell{v: v, ok: true} }
func txt(s string) cell      { return cell{text: s} }
func none() cell             { return cell{text: "—"} }
func failed(why string) cell { return cell{text: "n/a (" + why + ")"} }

type row struct {
	metric, target string
	format         string
	noRatio        bool
	val            func(name string) cell
}

func printTable(rr map[string]restartResult, cr map[string]crashResult, mr, br map[string]*manyResult) {
	names := kindNames()
	lat := func(p float64) func(string) cell {
		return func(n string) cell {
			r, ok := rr[n]
			if !ok {
				return none()
			}
			if len(r.gapsMs) == 0 {
				return failed(r.err)
			}
			return val(pct(r.gapsMs, p))
		}
	}
	many := func(m map[string]*manyResult, f func(r *manyResult) float64) func(string) cell {
		return func(n string) cell {
			r := m[n]
			switch {
			case r == nil:
				return none()
			case r.capped != "":
				return txt(r.capped)
			case r.err != "":
				return failed(r.err)
			}
			return val(f(r))
		}
	}
	stop := func(m map[string]*manyResult) func(string) cell {
		return func(n string) cell {
			r := m[n]
			switch {
			case r == nil:
				return none()
			case r.capped != "":
				return txt("not run")
			case r.err != "" || r.p == nil:
				return failed(r.err)
			case !r.stopClean:
				return txt("n/a (SIGKILLed)")
			}
			return val(float64(r.stopTime) / 1e6)
		}
	}
	tickMs := 1000 / float64(clkTck)
	var rows []row
	if len(rr) > 0 {
		rows = append(rows,
			row{"restart latency p50 (ms)", "", "%.3f", false, lat(50)},
			row{"restart latency p99 (ms)", "≤ 5", "%.3f", false, lat(99)},
			row{"restarts measured", "", "%.0f", true, func(n string) cell {
				r, ok := rr[n]
				if !ok {
					return none()
				}
				return val(float64(len(r.gapsMs)))
			}},
		)
	}
	if len(cr) > 0 {
		crash := func(f func(r crashResult) float64) func(string) cell {
			return func(n string) cell {
				r, ok := cr[n]
				switch {
				case !ok:
					return none()
				case r.err != "" && len(r.ms) == 0:
					return failed(r.err)
				}
				return val(f(r))
			}
		}
		rows = append(rows,
			row{fmt.Sprintf("mass crash: %d exit at once, until all run again, median of %d (ms)", crashServices, crashRounds), "", "%.1f", false,
				crash(func(r crashResult) float64 { return median(r.ms) })},
			row{"mass crash: worst round (ms)", "", "%.1f", false,
				crash(func(r crashResult) float64 { return slicesMax(r.ms) })},
			row{"mass crash: the supervisor's CPU time per round, median (ms, schedstat; s6, runit: sum)", "", "%.1f", false,
				crash(func(r crashResult) float64 { return median(r.cpuMs) })},
			row{"mass crash: last exit after the trigger, median (ms; the same for all: the trigger's spread)", "", "%.1f", true,
				crash(func(r crashResult) float64 { return median(r.exitsMs) })},
		)
	}
	addMany := func(m map[string]*manyResult, n int) {
		if len(m) == 0 {
			return
		}
		N := fmtCount(n)
		tgt := func(t string) string {
			if n == 1000 {
				return t
			}
			return ""
		}
		rows = append(rows,
			row{fmt.Sprintf("time to %s services running (ms)", N), "", "%.0f", false, many(m, func(r *manyResult) float64 { return r.spawnMs })},
			row{fmt.Sprintf("VmRSS with %s services (MiB; s6: sum)", N), tgt("≤ 40"), "%.1f", false, many(m, func(r *manyResult) float64 { return float64(r.after.rssKB) / 1024 })},
			row{fmt.Sprintf("VmHWM with %s services (MiB; s6: sum)", N), tgt("≤ 40"), "%.1f", false, many(m, func(r *manyResult) float64 { return float64(r.after.hwmKB) / 1024 })},
			row{fmt.Sprintf("PSS with %s services (MiB; s6: sum)", N), "", "%.1f", false, many(m, func(r *manyResult) float64 { return float64(r.after.pssKB) / 1024 })},
			row{fmt.Sprintf("VmRSS of the top process alone, %s services (MiB; s6: s6-svscan)", N), "", "%.1f", false, many(m, func(r *manyResult) float64 { return float64(r.top.rssKB) / 1024 })},
			row{fmt.Sprintf("CPU time idle %d s with %s, utime+stime (ms; s6: sum)", idleSeconds, N), tgt(fmt.Sprintf("≤ %s", fmtNum(10*float64(idleSeconds)/60, "%.0f"))), "%.0f", false,
				many(m, func(r *manyResult) float64 { return float64(r.after.ticks-r.before.ticks) * tickMs })},
			row{fmt.Sprintf("CPU time idle %d s with %s, schedstat (ms; s6: sum)", idleSeconds, N), "", "%.2f", false,
				many(m, func(r *manyResult) float64 { return float64(r.after.schedNs-r.before.schedNs) / 1e6 })},
		)
		reloadRow := func(get func(r *manyResult) *reloadResult, f func(x *reloadResult) cell) func(string) cell {
			return func(name string) cell {
				r := m[name]
				if r == nil || get(r) == nil {
					return none()
				}
				x := get(r)
				if x.err != "" {
					return failed(x.err)
				}
				return f(x)
			}
		}
		hasReload := false
		for _, r := range m {
			hasReload = hasReload || r.reload != nil
		}
		if hasReload {
			rel := func(r *manyResult) *reloadResult { return r.reload }
			hup := func(r *manyResult) *reloadResult { return r.hup }
			rows = append(rows,
				row{fmt.Sprintf("reload, 1 of %s changed: command to the new process running, median of %d (ms)", N, reloadRounds), tgt("tend-files ≤ 13.5"), "%.1f", false,
					reloadRow(rel, func(x *reloadResult) cell { return val(x.ms) })},
				row{"reload: the command returned after (ms)", "", "%.1f", false,
					reloadRow(rel, func(x *reloadResult) cell { return val(x.cmdMs) })},
				row{fmt.Sprintf("reload: of the other %s, still the same PID, fewest in a round (other starts, all rounds)", fmtCount(n-1)), "", "", true,
					reloadRow(rel, func(x *reloadResult) cell {
						return txt(fmt.Sprintf("%d (%d)", x.untouched, x.extra))
					})},
				row{"reload through SIGHUP (tend): to the new process running, median (ms)", "", "%.1f", true,
					reloadRow(hup, func(x *reloadResult) cell { return val(x.ms) })},
				row{"reload through SIGHUP: others still the same PID (other starts)", "", "", true,
					reloadRow(hup, func(x *reloadResult) cell { return txt(fmt.Sprintf("%d (%d)", x.untouched, x.extra)) })},
			)
		}
		rows = append(rows, row{fmt.Sprintf("graceful stop of %s services (ms)", N), "", "%.0f", false, stop(m)})
	}
	addMany(mr, services)
	addMany(br, bigServices)

	// Only the columns that have something in them.
	var cols []string
	for _, n := range names {
		for _, r := range rows {
			if c := r.val(n); c.ok || c.text != "—" {
				cols = append(cols, n)
				break
			}
		}
	}
	head := "| metric |"
	sep := "|---|"
	for _, n := range cols {
		head += " " + n + " |"
		sep += "---:|"
	}
	var ratioCols []string
	for _, n := range cols {
		if !isTend(n) {
			ratioCols = append(ratioCols, n)
		}
	}
	for _, n := range ratioCols {
		head += " tend / " + n + " |"
		sep += "---:|"
	}
	fmt.Println(head + " tend target |")
	fmt.Println(sep + "---|")
	for _, r := range rows {
		line := "| " + r.metric + " |"
		a := r.val("tend")
		for _, n := range cols {
			c := r.val(n)
			switch {
			case c.text != "":
				line += " " + c.text + " |"
			default:
				line += " " + fmtNum(c.v, r.format) + " |"
			}
		}
		for _, n := range ratioCols {
			b := r.val(n)
			switch {
			case r.noRatio || (b.text == "—" && !b.ok):
				line += " — |"
			case a.ok && b.ok && b.v != 0:
				line += " " + fmtRatio(a.v/b.v) + " |"
			case a.ok && b.ok && a.v == 0 && b.v == 0:
				line += " — |"
			default:
				line += " n/a |"
			}
		}
		fmt.Println(line + " " + r.target + " |")
	}
	if f, ok := rr["floor"]; ok {
		if f.err != "" {
			fmt.Printf("\n%s\n", f.err)
		} else {
			fmt.Printf("\nRestart floor of this machine (floor.c: posix_spawn and waitpid in a C loop, no supervisor):"+
				" p50 %.3f ms, p99 %.3f ms over %d restarts.\n", pct(f.gapsMs, 50), pct(f.gapsMs, 99), len(f.gapsMs))
		}
	}
	if f, ok := rr["floor-fds"]; ok {
		if f.err != "" {
			fmt.Printf("\n%s\n", f.err)
		} else {
			fmt.Printf("\nThe same floor with %s open fds in the spawning process (the kernel copies the fd table into every child,"+
				" and the exec closes them again): p50 %.3f ms, p99 %.3f ms over %d restarts.\n",
				fmtCount(floorFds), pct(f.gapsMs, 50), pct(f.gapsMs, 99), len(f.gapsMs))
		}
	}
	for _, n := range names {
		if e := rr[n].err; e != "" {
			fmt.Printf("\n%s restart test: %s\n", n, e)
		}
		if c, ok := cr[n]; ok {
			if c.err != "" {
				fmt.Printf("\n%s mass crash: %s\n", n, c.err)
			}
			if len(c.ms) > 0 {
				fmt.Printf("\n%s mass crash, each round (ms): %s; the supervisor's CPU time (ms): %s\n", n, fmtList(c.ms), fmtList(c.cpuMs))
			}
		}
		for _, m := range []map[string]*manyResult{mr, br} {
			r := m[n]
			if r == nil {
				continue
			}
			N := fmtCount(r.n)
			if r.err != "" && r.capped == "" {
				fmt.Printf("\n%s %s-service test: %s\n", n, N, r.err)
			}
			if r.p != nil && r.p.exited() && !r.stopClean && r.capped == "" {
				fmt.Printf("\n%s had not stopped %s services after the stop request: SIGKILLed.\n", n, N)
			}
			if r.err == "" && r.nAfter != len(r.sup) {
				fmt.Printf("\n%s: %d supervisor processes at the start of the idle window, %d at its end\n", n, len(r.sup), r.nAfter)
			}
			if r.err == "" && (r.running != r.n || r.runningEnd != r.n || r.startsEnd != r.n) {
				fmt.Printf("\n%s: %d svc processes after the spawn of %s, %d at the end of the idle window, %d starts in all (expected %d each)\n",
					n, r.running, N, r.runningEnd, r.startsEnd, r.n)
			}
			if r.err == "" {
				fmt.Printf("\n%s with %s services: top process %d threads, %d open fds\n", n, N, r.top.threads, r.top.fds)
			}
			if r.reload != nil && r.reload.err == "" {
				fmt.Printf("\n%s reload: `%s`, each round (ms): %s; the command returned after (ms): %s\n",
					n, r.reload.how, fmtList(r.reload.msAll), fmtList(r.reload.cmdAll))
			}
			if r.hup != nil && r.hup.err == "" {
				fmt.Printf("\n%s reload through SIGHUP, each round (ms): %s\n", n, fmtList(r.hup.msAll))
			}
		}
	}
	if len(br) > 0 && bigTendOutputUsed != "prefix" {
		fmt.Printf("\ntend at %s services ran with `output = %q` (its default, \"prefix\", holds two pipe ends per service:"+
			" RLIMIT_NOFILE %d is too few for it); at %s it ran with the default.\n",
			fmtCount(bigServices), bigTendOutputUsed, nofileHard, fmtCount(services))
	}
	fmt.Printf("\nThe driver ran for %.0f s.\n", time.Since(t0).Seconds())
}

func slicesMax(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	return m
}

func fmtList(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.1f", x))
	}
	return strings.Join(s, ", ")
}

func fmtCount(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
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
