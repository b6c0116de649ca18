package integration

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

// waitFile waits for a file that a service writes, and returns it.
func waitFile(t *testing.T, c *controlled, path string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "END\n") {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service never wrote %s\n%s", path, c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// limitLine finds a line of /proc/PID/limits: "Max open files  1000  1000  files".
func limitLine(t *testing.T, limits, name string) []string {
	t.Helper()
	for _, line := range strings.Split(limits, "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("no %q in\n%s", name, limits)
	return nil
}

// TestServiceLimitsHoldFromTheStart: the program the service names (sh
// here, with the pid tend reports) reads its own limits, umask, nice and
// oom_score_adj before it does anything else, as the user it runs as; a
// negative nice needs a privilege the user does not have, so it must be
// set before tend drops it. Nothing of the
// shim is in its environment or command line.
func TestServiceLimitsHoldFromTheStart(t *testing.T) {
	needRoot(t)
	var memlock syscall.Rlimit
	if err := syscall.Getrlimit(8 /* RLIMIT_MEMLOCK */, &memlock); err != nil || memlock.Max < 1<<20 {
		t.Fatalf("this test needs a hard memlock limit of at least 1M: %v %v", memlock, err)
	}
	// Where nobody can write: t.TempDir's parent is root's alone.
	dir, err := os.MkdirTemp("", "tend-limits-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	script := fmt.Sprintf(`{ echo $$; cat /proc/self/limits; umask; cat /proc/self/oom_score_adj; cut -d' ' -f19 /proc/self/stat; id -u; env; tr '\0' ' ' < /proc/$$/cmdline; echo; echo END; } > %s; exec sleep 300`, out)
	c := startControlled(t, fmt.Sprintf(`cgroups = false
[services.lim]
command = ["sh", "-c", %q]
user = "nobody"
limits = { nofile = 1000, nproc = 512, core = 0, memlock = "1M" }
umask = "027"
nice = -5
oom_score_adj = 500
`, script))
	got := waitFile(t, c, out)
	lines := strings.Split(got, "\n")
	if pid := c.pid(t, "lim"); strconv.Itoa(pid) != lines[0] {
		t.Errorf("tend says the service is process %d, the program is %s: a process in between", pid, lines[0])
	}
	for _, l := range []struct{ name, want string }{
		{"Max open files", "1000"},
		{"Max processes", "512"},
		{"Max core file size", "0"},
		{"Max locked memory", "1048576"},
	} {
		f := limitLine(t, got, l.name)
		if len(f) < 2 || f[0] != l.want || f[1] != l.want {
			t.Errorf("%s: soft and hard %v, want %s both", l.name, f, l.want)
		}
	}
	var after []string
	for i, line := range lines {
		if strings.HasPrefix(line, "Max realtime timeout") {
			after = lines[i+1:]
		}
	}
	if len(after) < 4 {
		t.Fatalf("short output:\n%s", got)
	}
	if after[0] != "0027" || after[1] != "500" || after[2] != "-5" || after[3] != "65534" {
		t.Errorf("umask, oom_score_adj, nice, uid = %q, want 0027, 500, -5, 65534", after[:4])
	}
	if strings.Contains(got, "tend-internal") || strings.Contains(got, "/proc/self/exe") {
		t.Errorf("the shim shows in the service's environment or command line:\n%s", got)
	}
	t.Logf("the service's own view:\n%s", strings.Join(lines[:min(len(lines), 23)], "\n"))
}

// TestServiceLimitAboveTendsHardLimit: the start fails, and the reason
// names the limit and tend's own hard limit.
func TestServiceLimitAboveTendsHardLimit(t *testing.T) {
	needRoot(t)
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	c := startControlled(t, fmt.Sprintf(`cgroups = false
[services.big]
command = "sleep 300"
limits = { nofile = %d }
`, nofile.Max+1))
	want := fmt.Sprintf("limits.nofile = %d is above tend's own hard limit of %d", nofile.Max+1, nofile.Max)
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := c.status(t)["big"]
		if r, _ := s["reason"].(string); strings.Contains(r, want) {
			if s["pid"] != nil {
				t.Errorf("a pid for a start that failed: %v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reason with %q: %v\n%s", want, s, c.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(c.errb.String(), "big cannot start: "+want) {
		t.Errorf("tend's log does not name the service and the limit:\n%s", c.errb.String())
	}
}

// TestCgroupLimitsSessionModeWarns: with cgroups = false nothing can
// hold memory_max or pids_max; tend says so at start, naming the service
// and the keys, and the status shows it.
func TestCgroupLimitsSessionModeWarns(t *testing.T) {
	needRoot(t)
	c := startControlled(t, `cgroups = false
[services.cg]
command = "sleep 300"
memory_max = "512M"
pids_max = 100
`)
	c.waitState(t, "cg", "running")
	limits, _ := c.status(t)["cg"]["limits"].(map[string]any)
	for _, key := range []string{"memory_max", "pids_max"} {
		if v, _ := limits[key].(string); !strings.HasPrefix(v, "not applied: no cgroup for the service: cgroups turned off") {
			t.Errorf("status limits.%s = %q", key, v)
		}
	}
	if !strings.Contains(c.errb.String(), "WARN  cg memory_max is not applied: no cgroup for the service") {
		t.Errorf("no warning naming the service and the key:\n%s", c.errb.String())
	}
}

// TestCgroupLimitsWritten: in cgroup mode memory_max and pids_max are in
// the service's cgroup's memory.max and pids.max, or, where the
// controllers cannot be had, the status says why.
func TestCgroupLimitsWritten(t *testing.T) {
	mount := cgroup2Mount(t)
	b, _ := os.ReadFile(filepath.Join(mount, "cgroup.controllers"))
	available := strings.Fields(string(b))
	c, dir := startInCgroup(t, "rw", `
[services.cg]
command = "sleep 300"
memory_max = "512M"
pids_max = 100
`)
	// Runs before startInCgroup's clean-up, which removes only its own
	// directories: tend ends by SIGKILL, and cannot remove the service's.
	t.Cleanup(func() {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if err := os.Remove(filepath.Join(dir, "init", "cg.service")); err == nil || os.IsNotExist(err) {
				return
			}
		}
	})
	c.waitState(t, "cg", "running")
	st := c.status(t)["cg"]
	limits, _ := st["limits"].(map[string]any)
	if !strings.Contains(strings.Join(available, " "), "memory") || !strings.Contains(strings.Join(available, " "), "pids") {
		for _, key := range []string{"memory_max", "pids_max"} {
			if v, _ := limits[key].(string); !strings.Contains(v, "controller is not available") {
				t.Errorf("status limits.%s = %q, want the controller named as missing", key, v)
			}
		}
		// What is checked here is that the status says so; that the
		// limits are written where the controllers exist is
		// TestVMCgroupLimitsApplied's, which runs wherever the VM tests do.
		t.Logf("the host's cgroup v2 tree has no memory and pids controllers (%q): checked that the status says so", available)
		return
	}
	cg, _ := st["cgroup"].(string)
	for file, want := range map[string]string{"memory.max": "536870912", "pids.max": "100"} {
		// The cgroup is the path tend sees, in its cgroup namespace,
		// whose root is dir.
		got, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(cg, "/sys/fs/cgroup"), file))
		if err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("%s/%s = %q (%v), want %s; status %v", cg, file, got, err, want, limits)
		}
	}
}
