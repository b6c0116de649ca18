// Package integration builds the tend binary and runs it for real: as PID 1
// of a fresh PID namespace (unshare --pid --fork --mount-proc), and as a
// plain subreaper. These tests need root and util-linux's unshare; with
// CI=true a test that cannot run fails instead of skipping.
package integration

import (
	"bytes"
	"context"
	"fmt"
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
	tendBin  string // the static tend binary under test
	panicBin string // tend built with -tags tendpanic: it panics 300ms after start
	slowBin  string // tend built with -tags tendslowstart: it pauses 300ms before it starts
	progBin  string // testprog, the children's helper
	workDir  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tend-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workDir = dir
	tendBin = filepath.Join(dir, "tend")
	progBin = filepath.Join(dir, "testprog")
	panicBin = filepath.Join(dir, "tend-panic")
	slowBin = filepath.Join(dir, "tend-slow")
	err = build(tendBin, "..")
	if err == nil {
		err = build(progBin, "./testprog")
	}
	if err == nil {
		err = build(panicBin, "..", "-tags", "tendpanic")
	}
	if err == nil {
		err = build(slowBin, "..", "-tags", "tendslowstart")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binUnderTest is the tend a test that can show a bug on an older build
// runs: TEND_BIN_UNDER_TEST if set, else tendBin. `tend ctl` is always
// tendBin.
func binUnderTest() string {
	if b := os.Getenv("TEND_BIN_UNDER_TEST"); b != "" {
		return b
	}
	return tendBin
}

// build compiles a package the way the release build does.
func build(out, pkg string, flags ...string) error {
	args := append([]string{"build", "-trimpath", "-ldflags=-s -w", "-o", out}, flags...)
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// needRoot stops a test that cannot run here: a skip on a developer's
// machine, a failure in CI, where every test must run.
func needRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	} else if _, err := exec.LookPath("unshare"); err != nil {
		why = "needs unshare from util-linux"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run in CI: %s", why)
	}
	t.Skip(why)
}

// result is what a finished tend run left behind.
type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// run describes one tend invocation.
type run struct {
	pid1    bool          // as PID 1 of a new PID namespace
	env     []string      // added to the test's environment
	stdin   string        // "" = /dev/null
	timeout time.Duration // default 30s
	args    []string      // tend's arguments
	bin     string        // default tendBin
	stdout  *os.File      // tend's stdout instead of a buffer (start only)
}

func (r run) command(ctx context.Context) *exec.Cmd {
	bin := tendBin
	if r.bin != "" {
		bin = r.bin
	}
	argv := append([]string{bin}, r.args...)
	if r.pid1 {
		argv = append([]string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child"}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), r.env...)
	cmd.Stdin = strings.NewReader(r.stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// do runs tend to completion.
func (r run) do(t *testing.T) result {
	t.Helper()
	timeout := r.timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := r.command(ctx)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("tend %q did not finish within %s\nstdout:\n%s\nstderr:\n%s", r.args, timeout, res.stdout, res.stderr)
	}
	res.code = exitCode(err)
	return res
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

// started is a tend run in the background.
type started struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	errb *lockedBuffer
	done chan result
}

// start runs tend in the background; wait collects it.
func (r run) start(t *testing.T) *started {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := r.command(ctx)
	s := &started{cmd: cmd, out: &lockedBuffer{}, errb: &lockedBuffer{}, done: make(chan result, 1)}
	cmd.Stdout, cmd.Stderr = s.out, s.errb
	if r.stdout != nil {
		cmd.Stdout = r.stdout
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		err := cmd.Wait()
		s.done <- result{stdout: s.out.String(), stderr: s.errb.String(), code: exitCode(err)}
	}()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return s
}

func (s *started) wait(t *testing.T, limit time.Duration) result {
	t.Helper()
	select {
	case res := <-s.done:
		return res
	case <-time.After(limit):
		t.Fatalf("tend did not exit within %s\nstdout:\n%s\nstderr:\n%s", limit, s.out.String(), s.errb.String())
		return result{}
	}
}

// waitOutput waits until tend's stdout contains want.
func (s *started) waitOutput(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(s.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on stdout within %s\nstdout:\n%s\nstderr:\n%s", want, limit, s.out.String(), s.errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tendPid is tend's PID as seen from the test: the process itself, or under
// unshare the child that unshare forked.
func (s *started) tendPid(t *testing.T, pid1 bool) int {
	t.Helper()
	if !pid1 {
		return s.cmd.Process.Pid
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if kids := childrenOf(s.cmd.Process.Pid); len(kids) > 0 {
			return kids[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("unshare never started tend")
	return 0
}

// childrenOf scans /proc for the children of ppid.
func childrenOf(ppid int) []int {
	var kids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(ppid) {
			kids = append(kids, pid)
		}
	}
	return kids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// lockedBuffer is a bytes.Buffer that a test may read while tend writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
