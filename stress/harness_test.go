//go:build stress

// Package stress is tend's stress suite: floods, faults and hostile
// conditions, each scenario bounded in time and printing its figures with
// t.Logf. It needs root (PID namespaces, cgroups) and is not run by CI:
//
//	go test -tags stress -count=1 -v ./stress
//
// TEND_BIN runs the scenarios against another tend binary (an older
// build, to compare figures); STRESS_ROUNDS changes the number of rounds
// of the signal floods (default 20).
package stress

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	tendBin   string
	helperBin string
	workDir   string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tend-stress-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	tendBin = os.Getenv("TEND_BIN")
	if tendBin == "" {
		tendBin = filepath.Join(dir, "tend")
		err = build(tendBin, "..")
	}
	helperBin = filepath.Join(dir, "helper")
	if err == nil {
		err = build(helperBin, "./helper", "-tags", "stress")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the stress suite needs root")
		os.Exit(1)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("tend under test: %s\nload at start: %s", tendBin, load)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(out, pkg string, flags ...string) error {
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// spec is one tend run.
type spec struct {
	args    []string
	pid1    bool      // PID 1 of a new PID namespace
	cpu     int       // pin tend to this CPU (taskset); -1 = no pinning
	nofile  int       // RLIMIT_NOFILE, 0 = inherited
	cgroup  string    // a cgroup.procs file to join before exec, "" = none
	stdout  io.Writer // default: a buffer
	stderr  io.Writer // default: a buffer
	outFile *os.File  // stdout and stderr both this file (a pipe end), overrides the writers
	env     []string
}

// proc is a tend that runs.
type proc struct {
	t        *testing.T
	cmd      *exec.Cmd
	pid      int // tend itself
	out, err *buffer
	done     chan struct{}
	code     int
	cancel   context.CancelFunc
}

func start(t *testing.T, s spec) *proc {
	t.Helper()
	argv := append([]string{tendBin}, s.args...)
	if s.pid1 {
		argv = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}, argv...)
	}
	if s.cpu >= 0 {
		argv = append([]string{"taskset", "-c", strconv.Itoa(s.cpu)}, argv...)
	}
	var pre []string
	if s.nofile > 0 {
		pre = append(pre, fmt.Sprintf("ulimit -n %d", s.nofile))
	}
	if s.cgroup != "" {
		pre = append(pre, fmt.Sprintf("echo $$ > %s", s.cgroup))
	}
	if len(pre) > 0 {
		argv = append([]string{"sh", "-c", strings.Join(pre, " && ") + ` && exec "$@"`, "sh"}, argv...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	p := &proc{t: t, cmd: cmd, out: &buffer{}, err: &buffer{}, done: make(chan struct{}), cancel: cancel}
	switch {
	case s.outFile != nil:
		cmd.Stdout, cmd.Stderr = s.outFile, s.outFile
	default:
		cmd.Stdout, cmd.Stderr = p.out, p.err
		if s.stdout != nil {
			cmd.Stdout = s.stdout
		}
		if s.stderr != nil {
			cmd.Stderr = s.stderr
		}
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		p.code = exitCode(err)
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	p.pid = cmd.Process.Pid
	if s.pid1 {
		p.pid = p.waitChild()
	}
	return p
}

// waitChild finds the process unshare forked: tend as PID 1.
func (p *proc) waitChild() int {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if kids := childrenOf(p.cmd.Process.Pid); len(kids) > 0 {
			return kids[0]
		}
		time.Sleep(2 * time.Millisecond)
	}
	p.t.Fatal("unshare never started tend")
	return 0
}

func (p *proc) signal(sig syscall.Signal) {
	if err := syscall.Kill(p.pid, sig); err != nil {
		p.t.Logf("kill %d %v: %v", p.pid, sig, err)
	}
}

// wait waits for tend to exit and returns its status (-1 on timeout).
func (p *proc) wait(limit time.Duration) int {
	select {
	case <-p.done:
		return p.code
	case <-time.After(limit):
		return -1
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
	return -1
}

// stats are what /proc says about a process.
type stats struct {
	cpu     time.Duration // user + system
	hwmKiB  int
	rssKiB  int
	threads int
	state   string
}

func (s stats) String() string {
	return fmt.Sprintf("cpu %s, VmHWM %.1f MiB, threads %d", s.cpu.Round(time.Millisecond), float64(s.hwmKiB)/1024, s.threads)
}

const clockTick = 100 // USER_HZ on Linux

func readStats(pid int) (stats, bool) {
	var st stats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return st, false
	}
	st.state = f[0]
	ut, _ := strconv.Atoi(f[11])
	stt, _ := strconv.Atoi(f[12])
	st.cpu = time.Duration(ut+stt) * time.Second / clockTick
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.Atoi(strings.Fields(v + " 0")[0])
		switch k {
		case "VmHWM":
			st.hwmKiB = n
		case "VmRSS":
			st.rssKiB = n
		case "Threads":
			st.threads = n
		}
	}
	return st, true
}

// watch samples tend's stats until stop; the last sample before it exits
// holds its VmHWM and CPU time, and the largest thread count seen.
type watch struct {
	mu         sync.Mutex
	last       stats
	maxThreads int
	stop       chan struct{}
	done       chan struct{}
}

func watchStats(pid int, every time.Duration) *watch {
	w := &watch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if st, ok := readStats(pid); ok && st.state != "Z" {
				w.mu.Lock()
				w.last = st
				w.maxThreads = max(w.maxThreads, st.threads)
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *watch) end() (stats, int) {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last, w.maxThreads
}

func childrenOf(ppid int) []int {
	var kids []int
	for _, pid := range pids() {
		if parentOf(pid) == ppid {
			kids = append(kids, pid)
		}
	}
	return kids
}

func pids() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

func parentOf(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// zombiesUnder counts zombie children of pid.
func zombiesUnder(pid int) int {
	n := 0
	for _, c := range childrenOf(pid) {
		if f := statFields(c); len(f) > 0 && f[0] == "Z" {
			n++
		}
	}
	return n
}

// descendants lists every process below root.
func descendants(root int) []int {
	children := map[int][]int{}
	for _, pid := range pids() {
		children[parentOf(pid)] = append(children[parentOf(pid)], pid)
	}
	var out []int
	queue := children[root]
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		out = append(out, pid)
		queue = append(queue, children[pid]...)
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
}

// buffer is a bytes.Buffer that may be read while tend writes it.
type buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitFor polls cond (the test's side, not tend's) until it holds.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// tail is the last lines of s, for failure messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func countLines(r io.Reader) int {
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
	}
	return n
}

// runCmd runs a command to completion, bounded by limit, and returns its
// combined output.
func runCmd(limit time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	b, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(b), err
}
