package integration

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cgroup2Mount is where the host mounts its cgroup v2 tree: /sys/fs/cgroup
// on a unified host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 2 && fields[2] == "cgroup2" {
			return fields[1]
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("cannot run in CI: no cgroup v2 tree mounted")
	}
	t.Skip("no cgroup v2 tree mounted")
	return ""
}

// startInCgroup runs tend as PID 1 of new PID, mount and cgroup namespaces
// whose cgroup root is a fresh child of the host's tree, with cgroup2
// mounted at /sys/fs/cgroup (mode "rw" or "ro"): what a container with a
// private cgroup namespace shows its init.
func startInCgroup(t *testing.T, mode, body string) (*controlled, string) {
	t.Helper()
	needRoot(t)
	dir := filepath.Join(cgroup2Mount(t), fmt.Sprintf("tend-test-%d-%s", os.Getpid(), mode))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			os.Remove(filepath.Join(dir, "init"))
			if os.Remove(dir) == nil {
				return
			}
		}
		t.Errorf("cannot remove the test's cgroup %s", dir)
	})
	c := startControlledWith(t, body, func(cfg string) run {
		// As a container runtime does, tend gets a cgroup of its own
		// (unshare itself stays in the namespace's root): tend divides
		// only a cgroup that holds nothing but itself.
		inner := fmt.Sprintf("mount -t cgroup2 none /sys/fs/cgroup && mkdir /sys/fs/cgroup/init && echo $$ > /sys/fs/cgroup/init/cgroup.procs && mount -o bind,remount,%s /sys/fs/cgroup && exec %s --config %s", mode, tendBin, cfg)
		script := fmt.Sprintf("echo $$ > %s/cgroup.procs && exec unshare --cgroup --mount --pid --fork --mount-proc --kill-child sh -c '%s'", dir, inner) // inner has no single quote
		return run{bin: "/bin/sh", args: []string{"-c", script}}
	})
	return c, dir
}

// escapeeService setsid's a child that ignores SIGTERM; marker is the
// child's last argument, to find it from outside tend's PID namespace.
func escapeeService(marker string) string {
	return fmt.Sprintf(`[services.web]
command = ["sh", "-c", "setsid sh -c 'trap \"\" TERM; while :; do sleep 0.1; done' %s & while :; do sleep 0.1; done"]
stop_timeout = "1s"
`, marker)
}

// TestCgroupMechanism: where tend can write its cgroup tree each service
// runs in a cgroup of its own, and a process that left the service's
// session is still stopped with it; where the tree is read-only, one line
// says so and the session mechanism takes over, which finds the same
// process while it is still connected.
func TestCgroupMechanism(t *testing.T) {
	for _, c := range []struct{ mode, tracking, notice string }{
		{"rw", "cgroup", "each service runs in its own cgroup under /sys/fs/cgroup/init"},
		{"ro", "session", "services are tracked by session and process group: cannot make a child of tend's cgroup /sys/fs/cgroup/init: read-only file system"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			marker := fmt.Sprintf("tend-escapee-%d-%s", os.Getpid(), c.mode)
			tend, dir := startInCgroup(t, c.mode, escapeeService(marker))
			tend.waitState(t, "web", "running")
			for deadline := time.Now().Add(10 * time.Second); processesWith(marker) == 0; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the escapee never started")
				}
			}
			st := tend.status(t)["web"]
			if st["tracking"] != c.tracking {
				t.Fatalf("tracking %v, want %s\n%s", st["tracking"], c.tracking, tend.errb.String())
			}
			if c.mode == "rw" {
				procs, _ := os.ReadFile(filepath.Join(dir, "init", "web.service", "cgroup.procs"))
				t.Logf("web.service/cgroup.procs: %s", strings.Fields(string(procs)))
				if len(strings.Fields(string(procs))) < 3 {
					t.Errorf("web's cgroup holds %q; want its shell, the escapee and their children", procs)
				}
			}
			start := time.Now()
			if _, errOut, code := tend.ctl(t, "stop", "web"); code != 0 {
				t.Fatalf("stop: %d %s", code, errOut)
			}
			for {
				state := tend.status(t)["web"]["state"]
				if state == "stopped" {
					break
				}
				if processesWith(marker) > 0 && time.Since(start) > 5*time.Second {
					t.Fatalf("the escapee is still alive %s after the stop (state %v)\n%s", time.Since(start), state, tend.errb.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if processesWith(marker) > 0 {
				t.Fatalf("web is stopped while its escapee lives\n%s", tend.errb.String())
			}
			t.Logf("stopped %s after the stop, escapee gone", time.Since(start).Round(time.Millisecond))
			if c.mode == "rw" {
				ev, _ := os.ReadFile(filepath.Join(dir, "init", "web.service", "cgroup.events"))
				if !strings.Contains(string(ev), "populated 0") {
					t.Errorf("web.service/cgroup.events: %q", ev)
				}
			}
			tend.ctl(t, "shutdown")
			res := tend.wait(t, 15*time.Second)
			if !strings.Contains(res.stderr, c.notice) {
				t.Errorf("no notice %q\n%s", c.notice, res.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "init", "web.service")); err == nil {
				t.Errorf("tend left web.service behind")
			}
		})
	}
}
