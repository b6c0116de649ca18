package spawner

import (
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/reaper"
)

// TestMain lets the test binary be the spawner, as tend's main does.
func TestMain(m *testing.M) {
	if IsSpawner(os.Args) {
		os.Exit(Serve())
	}
	os.Exit(m.Run())
}

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) warn(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, s)
}

func (w *warnings) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.msgs)
}

func setup(t *testing.T) (*reaper.Reaper, *Client, *warnings) {
	t.Helper()
	r := reaper.New(nil)
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, unix.SIGCHLD)
	stop := make(chan struct{})
	go r.Run(chld, stop)
	w := &warnings{}
	c, err := Start(r, w.warn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Stop()
		close(stop)
		signal.Stop(chld)
	})
	return r, c, w
}

func devnull(t *testing.T) []uintptr {
	f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return []uintptr{f.Fd(), f.Fd(), f.Fd()}
}

func start(t *testing.T, r *reaper.Reaper, c reaper.Cmd) (int, chan reaper.Exit, error) {
	t.Helper()
	exits := make(chan reaper.Exit, 1)
	pid, err := r.Start(c, func(e reaper.Exit) { exits <- e })
	return pid, exits, err
}

func wait(t *testing.T, exits chan reaper.Exit) reaper.Exit {
	t.Helper()
	select {
	case e := <-exits:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no exit")
		return reaper.Exit{}
	}
}

func TestChildIsOursAndItsExitIsDelivered(t *testing.T) {
	r, c, w := setup(t)
	out := filepath.Join(t.TempDir(), "out")
	_, exits, err := start(t, r, reaper.Cmd{
		Args:  []string{"/bin/sh", "-c", `grep -E '^(PPid|SigBlk|SigIgn)' /proc/self/status > "$OUT"; ls /proc/self/fd | wc -l >> "$OUT"; exit 7`},
		Env:   []string{"OUT=" + out},
		Files: devnull(t),
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e := wait(t, exits); e.Code() != 7 {
		t.Fatalf("exit %v, want code 7", e)
	}
	if c.Spawned() != 1 {
		t.Fatalf("spawned %d, want 1 (the child was forked in-process)", c.Spawned())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	// grep's parent is the shell; the shell's own line is not there, so
	// check the masks, which grep inherited from the shell.
	for _, want := range []string{"SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"} {
		if !strings.Contains(s, want) {
			t.Errorf("child status lacks %q:\n%s", want, s)
		}
	}
	if w.count() != 0 {
		t.Errorf("warnings: %v", w.msgs)
	}
}

func TestParentIsTheCaller(t *testing.T) {
	r, _, _ := setup(t)
	pid, exits, err := start(t, r, reaper.Cmd{Args: []string{"/bin/sleep", "5"}, Files: devnull(t)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if f[1] != itoa(os.Getpid()) {
		t.Errorf("parent %s, want %d", f[1], os.Getpid())
	}
	_ = r.Signal(pid, unix.SIGKILL, false)
	if e := wait(t, exits); !e.Signaled() {
		t.Errorf("exit %v", e)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// An exit that comes before the pid is registered is still delivered.
func TestImmediateExits(t *testing.T) {
	r, c, _ := setup(t)
	files := devnull(t)
	const n = 200
	var chans []chan reaper.Exit
	for range n {
		_, exits, err := start(t, r, reaper.Cmd{Args: []string{"/bin/true"}, Files: files})
		if err != nil {
			t.Fatal(err)
		}
		chans = append(chans, exits)
	}
	for _, ch := range chans {
		if e := wait(t, ch); e.Code() != 0 {
			t.Fatalf("exit %v", e)
		}
	}
	if c.Spawned() != n {
		t.Errorf("spawned %d, want %d", c.Spawned(), n)
	}
	if r.Orphans() != 0 {
		t.Errorf("%d orphans", r.Orphans())
	}
}

// A failed exec is an error of Start, and its zombie no orphan.
func TestExecFailure(t *testing.T) {
	r, _, w := setup(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "bad")
	// Executable, but its interpreter does not exist: LookPath passes,
	// the exec fails with ENOENT.
	if err := os.WriteFile(script, []byte("#!/nonexistent/interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err := start(t, r, reaper.Cmd{Args: []string{script}, Files: devnull(t)})
	if err == nil {
		t.Fatal("no error")
	}
	// Let the zombie be reaped, then check it was not counted.
	time.Sleep(100 * time.Millisecond)
	r.Reap()
	if r.Orphans() != 0 {
		t.Errorf("%d orphans: the failed child was counted", r.Orphans())
	}
	if w.count() != 0 {
		t.Errorf("warnings: %v", w.msgs)
	}
}

// A spawner that died is noticed, reported once, and starts fork in-process.
func TestDeadSpawnerFallsBack(t *testing.T) {
	r, c, w := setup(t)
	_ = unix.Kill(c.Pid(), unix.SIGKILL)
	<-c.gone
	for range 3 {
		_, exits, err := start(t, r, reaper.Cmd{Args: []string{"/bin/true"}, Files: devnull(t)})
		if err != nil {
			t.Fatal(err)
		}
		wait(t, exits)
	}
	if w.count() != 1 {
		t.Errorf("%d warnings, want 1: %v", w.count(), w.msgs)
	}
	if c.Usable() {
		t.Error("still usable")
	}
}

// A spawner that does not answer is given up after Timeout, and the start
// is done in-process.
func TestStuckSpawnerFallsBack(t *testing.T) {
	r, c, w := setup(t)
	_ = unix.Kill(c.Pid(), unix.SIGSTOP)
	t0 := time.Now()
	_, exits, err := start(t, r, reaper.Cmd{Args: []string{"/bin/true"}, Files: devnull(t)})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	wait(t, exits)
	if took > 2*Timeout+time.Second {
		t.Errorf("took %s", took)
	}
	if w.count() != 1 || c.Usable() || c.Spawned() != 0 {
		t.Errorf("warnings %v, usable %v, spawned %d", w.msgs, c.Usable(), c.Spawned())
	}
	select {
	case <-c.gone:
	case <-time.After(5 * time.Second):
		t.Error("the stuck spawner was not ended")
	}
}

func TestStop(t *testing.T) {
	r, c, _ := setup(t)
	c.Stop()
	select {
	case <-c.gone:
	default:
		t.Fatal("Stop returned before the spawner's exit was reaped")
	}
	if c.Usable() {
		t.Error("usable after Stop")
	}
	if r.Orphans() != 0 {
		t.Errorf("%d orphans", r.Orphans())
	}
}

func TestWire(t *testing.T) {
	q := &request{path: "/bin/x", dir: "/d", argv: []string{"x", ""}, env: []string{"A=1"}, setsid: true,
		cred: &syscall.Credential{Uid: 5, Gid: 6, Groups: []uint32{7, 8}}, slots: []uint32{0, none, 1}, cgroup: 2}
	got, err := decode(q.encode())
	if err != nil {
		t.Fatal(err)
	}
	if got.path != q.path || got.dir != q.dir || len(got.argv) != 2 || got.argv[1] != "" || got.env[0] != "A=1" ||
		!got.setsid || got.setpgid || got.cred.Uid != 5 || got.cred.Groups[1] != 8 || got.slots[1] != none || got.cgroup != 2 {
		t.Fatalf("%+v", got)
	}
	for i := range len(q.encode()) {
		if _, err := decode(q.encode()[:i]); err == nil {
			t.Fatalf("a request cut at %d decoded", i)
		}
	}
}

func TestSupported(t *testing.T) {
	if !supported(&syscall.SysProcAttr{Setsid: true, Credential: &syscall.Credential{}, UseCgroupFD: true, CgroupFD: 5}) {
		t.Error("a service's attributes are not supported")
	}
	if supported(&syscall.SysProcAttr{Setctty: true}) || supported(&syscall.SysProcAttr{Foreground: true}) {
		t.Error("a terminal is supported")
	}
}
