package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The runc tests run tend as PID 1 of a real OCI container with Debian's runc,
// the runtime under Docker and containerd. Each test builds a bundle: a root
// file system of busybox-static applets plus the static tend binary, and a
// config.json made from `runc spec` with Docker's defaults where they matter
// (capabilities, no terminal, a writable root). The container runs in the
// foreground (`runc run`), as a containerd shim runs it: runc's exit status is
// the container's. They need root, runc and busybox-static; with CI=true a
// missing one is a failure.

// dockerCaps is the capability set Docker gives a container by default.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// runcApplets are the busybox commands linked into the container's /bin.
var runcApplets = []string{"sh", "sleep", "usleep", "cat", "echo", "touch", "test", "kill", "ls", "ps", "true"}

// containerSeq makes container ids unique within this test process; the pid
// makes them unique across concurrent runs of the tests.
var containerSeq atomic.Int64

// needRunc stops a test that cannot run a container here: a skip on a
// developer's machine, a failure in CI.
func needRunc(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	} else if _, err := exec.LookPath("runc"); err != nil {
		why = "needs runc (package runc)"
	} else if _, err := os.Stat(busybox); err != nil {
		why = "needs " + busybox + " (package busybox-static)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run in CI: %s", why)
	}
	t.Skip(why)
}

// runcState is the private state directory of the runc tests (runc --root),
// so that they see and clean up only their own containers.
func runcState() string { return filepath.Join(workDir, "runc-state") }

func runcCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "runc", append([]string{"--root", runcState()}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// container is one OCI container, running or finished.
type container struct {
	id     string
	bundle string
	log    string // the container's stdout and stderr (and runc's own errors)
	start  time.Time
	done   chan struct{} // closed when runc run has ended
	res    result        // then: runc run's exit status
}

// spec describes a container to run.
type spec struct {
	args  []string          // process.args: the entrypoint
	env   []string          // added to process.env
	files map[string]string // more files in the root file system, by path
	uid   int               // process.user: the uid and gid the container runs as (a Dockerfile's USER); 0 is root
}

// bundle writes an OCI bundle for s into a new directory: rootfs/ with
// busybox, its applets and tend in /bin, and config.json.
func (s spec) bundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "run", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, busybox, filepath.Join(root, "bin", "busybox"))
	copyFile(t, tendBin, filepath.Join(root, "bin", "tend"))
	for _, a := range runcApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	// /tmp as images have it: anyone may make files there, which is
	// where a tend that is not root puts its control socket.
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	for name, body := range s.files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Start from runc's own default spec and change what Docker changes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := runcCommand(ctx, "spec", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v\n%s", err, out)
	}
	cfgPath := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("runc spec wrote unreadable JSON: %v", err)
	}
	proc := cfg["process"].(map[string]any)
	proc["args"] = s.args
	proc["terminal"] = false
	proc["user"] = map[string]any{"uid": s.uid, "gid": s.uid}
	env, _ := proc["env"].([]any)
	for _, e := range s.env {
		env = append(env, e)
	}
	proc["env"] = env
	proc["capabilities"] = map[string]any{"bounding": dockerCaps, "effective": dockerCaps, "permitted": dockerCaps}
	cfg["root"] = map[string]any{"path": "rootfs", "readonly": false}
	cfg["hostname"] = "tend-test"
	if raw, err = json.MarshalIndent(cfg, "", "\t"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// run starts the container in the foreground (`runc run`, no terminal) and
// returns at once; the container is deleted when the test ends.
func (s spec) run(t *testing.T) *container {
	t.Helper()
	needRunc(t)
	name := strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-"))
	if len(name) > 40 {
		name = name[:40]
	}
	c := &container{
		id:     fmt.Sprintf("tend-%s-%d-%d", name, os.Getpid(), containerSeq.Add(1)),
		bundle: s.bundle(t),
		done:   make(chan struct{}),
	}
	c.log = filepath.Join(c.bundle, "output.log")
	logf, err := os.Create(c.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := runcCommand(ctx, "run", "--bundle", c.bundle, c.id)
	// Files, not pipes: the container gets these descriptors as its own
	// stdout and stderr, as under a containerd shim; stdin is /dev/null.
	cmd.Stdout, cmd.Stderr = logf, logf
	c.start = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("runc run: %v", err)
	}
	go func() {
		defer cancel()
		err := cmd.Wait()
		c.res = result{code: exitCode(err), elapsed: time.Since(c.start)}
		close(c.done)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = runcCommand(ctx, "delete", "--force", c.id).Run()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("runc run %s did not end after runc delete --force", c.id)
		}
	})
	return c
}

// output is what the container has printed so far.
func (c *container) output() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// wait returns the container's exit status, as runc reports it.
func (c *container) wait(t *testing.T, limit time.Duration) result {
	t.Helper()
	select {
	case <-c.done:
		res := c.res
		res.stdout = c.output()
		return res
	case <-time.After(limit):
		t.Fatalf("container %s did not exit within %s\noutput:\n%s", c.id, limit, c.output())
		return result{}
	}
}

// waitOutput waits until the container has printed want.
func (c *container) waitOutput(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(c.output(), want) {
		select {
		case <-c.done:
			t.Fatalf("container exited (status %d) before printing %q\noutput:\n%s", c.res.code, want, c.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("container printed no %q within %s\noutput:\n%s", want, limit, c.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exec runs a command inside the running container (`runc exec`, as
// `docker exec` and Docker's HEALTHCHECK do); it returns stdout, stderr and
// the exit status.
func (c *container) exec(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := runcCommand(ctx, append([]string{"exec", c.id}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("runc exec %s %q did not finish within 20s\nstderr: %s", c.id, args, errb.String())
	}
	return out.String(), errb.String(), exitCode(err)
}

// kill sends sig to the container's PID 1, as `docker stop` and `docker
// kill` do.
func (c *container) kill(t *testing.T, sig string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := runcCommand(ctx, "kill", c.id, sig).CombinedOutput(); err != nil {
		t.Fatalf("runc kill %s %s: %v\n%s\ncontainer output:\n%s", c.id, sig, err, out, c.output())
	}
}

// TestRuncExitCode: the main program's exit status is the container's.
func TestRuncExitCode(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"exit code", []string{"/bin/tend", "--", "sh", "-c", "exit 7"}, 7},
		{"killed by a signal", []string{"/bin/tend", "--", "sh", "-c", "kill -KILL $$"}, 128 + 9},
		{"not found", []string{"/bin/tend", "--", "no-such-program"}, 127},
		{"success", []string{"/bin/tend", "--", "true"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := spec{args: tc.args}.run(t)
			res := c.wait(t, 30*time.Second)
			if res.code != tc.want {
				t.Fatalf("runc run exited %d, want %d\noutput:\n%s", res.code, tc.want, res.stdout)
			}
		})
	}
}

// orphanScript leaves 100 orphans that live for a second (long enough for
// the shell to be gone by then: no one but PID 1 can reap them), then
// replaces itself with a long sleep.
const orphanScript = `i=0; while [ $i -lt 100 ]; do (usleep 1000000 &); i=$((i+1)); done; echo spawned; exec sleep 300`

// census counts the orphans (usleep processes) in the container: alive and
// zombies, from /proc as seen inside it.
func (c *container) census(t *testing.T) (alive, zombies int, procs string) {
	t.Helper()
	// Processes may vanish between the glob and cat: cat's complaints and
	// status do not matter, what it printed does.
	out, _, _ := c.exec(t, "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null; true")
	for _, line := range strings.Split(out, "\n") {
		open, close := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
		if open < 0 || close < open {
			continue
		}
		f := strings.Fields(line[close+1:])
		if line[open+1:close] != "usleep" || len(f) < 2 {
			continue
		}
		if f[0] == "Z" {
			zombies++
		} else {
			alive++
		}
	}
	return alive, zombies, out
}

// waitOrphansGone polls until no orphan is left alive, then returns how many
// zombies remain.
func (c *container) waitOrphansGone(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		alive, zombies, procs := c.census(t)
		if alive == 0 {
			return zombies
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d orphans still alive after 30s\n%s", alive, procs)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestRuncReapsOrphans: orphans re-parented to tend as the container's PID 1
// leave no zombie, and -w logs each reap. The control run, without tend,
// shows that the same program does leave zombies when PID 1 does not reap.
func TestRuncReapsOrphans(t *testing.T) {
	t.Run("control without tend", func(t *testing.T) {
		c := spec{args: []string{"sh", "-c", orphanScript}}.run(t)
		c.waitOutput(t, "spawned", 30*time.Second)
		if zombies := c.waitOrphansGone(t); zombies == 0 {
			t.Fatal("no zombies with a PID 1 that does not reap: the census cannot tell")
		}
	})
	t.Run("tend", func(t *testing.T) {
		c := spec{args: []string{"/bin/tend", "-w", "--", "sh", "-c", orphanScript}}.run(t)
		c.waitOutput(t, "spawned", 30*time.Second)
		if zombies := c.waitOrphansGone(t); zombies != 0 {
			_, _, procs := c.census(t)
			t.Fatalf("%d zombies left under tend\n%s\noutput:\n%s", zombies, procs, c.output())
		}
		// -w logs every reaped process that was not a supervised child:
		// at least the 100 orphans (one line each, whatever the format).
		reaps := 0
		for _, line := range strings.Split(c.output(), "\n") {
			if strings.Contains(strings.ToLower(line), "reaped") {
				reaps++
			}
		}
		if reaps < 100 {
			t.Fatalf("-w logged %d reaps, want at least 100\noutput:\n%s", reaps, c.output())
		}
	})
}

// TestRuncStopWithinDockerGrace: `runc kill ID TERM`, what `docker stop`
// sends first, ends the container well inside Docker's 10 s grace (after
// which Docker would SIGKILL), with the program's status. The control shows
// why: a program that is PID 1 itself ignores SIGTERM.
func TestRuncStopWithinDockerGrace(t *testing.T) {
	const dockerGrace = 10 * time.Second
	t.Run("control without tend", func(t *testing.T) {
		c := spec{args: []string{"sh", "-c", "echo armed; exec sleep 300"}}.run(t)
		c.waitOutput(t, "armed", 30*time.Second)
		c.kill(t, "TERM")
		select {
		case <-c.done:
			t.Fatalf("a bare sleep as PID 1 ended on SIGTERM (status %d): the test cannot tell tend's part", c.res.code)
		case <-time.After(time.Second):
		}
		c.kill(t, "KILL")
		if res := c.wait(t, 30*time.Second); res.code != 128+9 {
			t.Fatalf("after SIGKILL runc run exited %d, want 137", res.code)
		}
	})
	cases := []struct {
		name   string
		script string
		want   int
	}{
		{"program killed by TERM", "echo armed; sleep 300", 128 + 15},
		{"program traps TERM", `trap 'echo got TERM; exit 42' TERM; sleep 300 & echo armed; wait $!`, 42},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := spec{args: []string{"/bin/tend", "--", "sh", "-c", tc.script}}.run(t)
			c.waitOutput(t, "armed", 30*time.Second)
			sent := time.Now()
			c.kill(t, "TERM")
			res := c.wait(t, 30*time.Second)
			took := time.Since(sent)
			if res.code != tc.want {
				t.Fatalf("runc run exited %d, want %d\noutput:\n%s", res.code, tc.want, res.stdout)
			}
			if took >= dockerGrace {
				t.Fatalf("the container took %s to stop after SIGTERM; Docker SIGKILLs after %s", took, dockerGrace)
			}
			t.Logf("stopped %s after SIGTERM, status %d", took.Round(time.Millisecond), res.code)
		})
	}
}

// supervisedConfig: db is ready only once /tmp/go exists (the test creates
// it with runc exec), app starts after db and has a liveness check.
const supervisedConfig = `
[services.db]
command = ["sh", "-c", "echo db up; exec sleep 300"]
ready = { file = "/tmp/go", interval = "100ms" }

[services.app]
command = ["sh", "-c", "echo app up; exec sleep 300"]
depends_on = ["db"]
health = { exec = ["test", "-e", "/tmp/go"], interval = "500ms", timeout = "2s" }
`

// ctlStatus runs `tend ctl status --json` inside the container: the
// services by name, or the exit status and stderr of a failure.
func (c *container) ctlStatus(t *testing.T) (map[string]map[string]any, int, string) {
	t.Helper()
	out, errOut, code := c.exec(t, "tend", "ctl", "status", "--json")
	if code != 0 {
		return nil, code, errOut
	}
	var list struct {
		Services []map[string]any `json:"services"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("tend ctl status --json: %v\n%s", err, out)
	}
	byName := map[string]map[string]any{}
	for _, s := range list.Services {
		name, _ := s["name"].(string)
		byName[name] = s
	}
	return byName, 0, ""
}

// TestRuncSupervisor: tend in supervisor mode as the container's PID 1, with
// `tend ctl health` as the HEALTHCHECK (through runc exec, as Docker runs
// it) and `tend ctl status` answering; `runc kill TERM` shuts it down
// cleanly inside Docker's grace.
func TestRuncSupervisor(t *testing.T) {
	c := spec{
		args:  []string{"/bin/tend"},
		env:   []string{"TEND_CONFIG=/etc/tend.toml"},
		files: map[string]string{"etc/tend.toml": supervisedConfig},
	}.run(t)

	// The control socket answers (at the default /run/tend.sock).
	deadline := time.Now().Add(20 * time.Second)
	var st map[string]map[string]any
	for {
		var code int
		var errOut string
		if st, code, errOut = c.ctlStatus(t); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tend ctl status never answered: last exit %d: %s\noutput:\n%s", code, errOut, c.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st["db"] == nil || st["app"] == nil {
		t.Fatalf("status lists %v, want db and app", st)
	}
	if st["db"]["ready"] == true {
		t.Fatalf("db is ready before /tmp/go exists: %v", st["db"])
	}

	// Not healthy yet: db is not ready, app not started.
	out, errOut, code := c.exec(t, "tend", "ctl", "health")
	if code != 1 {
		t.Fatalf("tend ctl health before db is ready: exit %d, want 1\n%s%s", code, out, errOut)
	}

	// db becomes ready; app starts; the HEALTHCHECK passes.
	if out, errOut, code := c.exec(t, "touch", "/tmp/go"); code != 0 {
		t.Fatalf("touch /tmp/go: exit %d\n%s%s", code, out, errOut)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, errOut, code = c.exec(t, "tend", "ctl", "health")
		if code == 0 {
			break
		}
		if code != 1 || time.Now().After(deadline) {
			t.Fatalf("tend ctl health: exit %d (want 0 within 20s of db ready)\n%s%s\noutput:\n%s", code, out, errOut, c.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, code, errOut = c.ctlStatus(t); code != 0 {
		t.Fatalf("tend ctl status: exit %d: %s", code, errOut)
	}
	for _, name := range []string{"db", "app"} {
		s := st[name]
		if s["state"] != "running" || s["ready"] != true || s["healthy"] != true {
			t.Fatalf("%s after health passed: %v", name, s)
		}
	}
	// The plain table, as an operator reads it.
	out, errOut, code = c.exec(t, "tend", "ctl", "status")
	if code != 0 || !regexp.MustCompile(`(?m)^app\s+running\s+yes\s`).MatchString(out) {
		t.Fatalf("tend ctl status: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(c.output(), "db | db up") || !strings.Contains(c.output(), "app | app up") {
		t.Fatalf("services' output is not on the container's stdout\noutput:\n%s", c.output())
	}

	// tend ctl logs, as `docker exec … tend ctl logs` would run it.
	out, errOut, code = c.exec(t, "tend", "ctl", "logs", "app")
	if code != 0 || !strings.Contains(out, "app | app up") {
		t.Fatalf("tend ctl logs app: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = c.exec(t, "tend", "ctl", "logs")
	if code != 0 || !strings.Contains(out, "db | db up") || !strings.Contains(out, "app | app up") {
		t.Fatalf("tend ctl logs: exit %d\n%s%s", code, out, errOut)
	}

	// docker stop: SIGTERM, and tend exits 0 (every service stopped by tend
	// counts as clean) well inside the 10 s grace.
	sent := time.Now()
	c.kill(t, "TERM")
	res := c.wait(t, 30*time.Second)
	if took := time.Since(sent); took >= 10*time.Second {
		t.Fatalf("supervisor took %s to stop after SIGTERM; Docker SIGKILLs after 10s", took)
	}
	if res.code != 0 {
		t.Fatalf("runc run exited %d after SIGTERM, want 0\noutput:\n%s", res.code, res.stdout)
	}
}

// The container's init is tend itself: PID 1 inside is /bin/tend.
func TestRuncTendIsPID1(t *testing.T) {
	c := spec{args: []string{"/bin/tend", "--", "sh", "-c", "echo armed; exec sleep 300"}}.run(t)
	c.waitOutput(t, "armed", 30*time.Second)
	out, errOut, code := c.exec(t, "cat", "/proc/1/cmdline")
	if code != 0 {
		t.Fatalf("cat /proc/1/cmdline: exit %d: %s", code, errOut)
	}
	if args := strings.Split(strings.TrimRight(out, "\x00"), "\x00"); args[0] != "/bin/tend" {
		t.Fatalf("PID 1 in the container is %q, want /bin/tend", args)
	}
	// The main program is tend's child, not PID 1.
	out, _, _ = c.exec(t, "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null; true")
	found := false
	for _, line := range strings.Split(out, "\n") {
		if i := strings.LastIndexByte(line, ')'); i > 0 && strings.Contains(line, "(sleep)") {
			f := strings.Fields(line[i+1:])
			if len(f) > 1 && f[1] == "1" {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no sleep whose parent is PID 1 (tend)\n%s", out)
	}
}

// TestRuncNonRootHealthcheck is issue 19: with a Dockerfile's `USER app`
// (process.user 1000:1000) and no control_socket, tend as the container's
// PID 1 makes its socket where that user can (/tmp/tend-1000/tend.sock),
// and `tend ctl health` through `runc exec`, as Docker's HEALTHCHECK runs
// it (as the container's user), finds it there and answers 0.
func TestRuncNonRootHealthcheck(t *testing.T) {
	c := spec{
		args:  []string{"/bin/tend"},
		env:   []string{"TEND_CONFIG=/etc/tend.toml"},
		files: map[string]string{"etc/tend.toml": "[services.web]\ncommand = [\"sh\", \"-c\", \"echo web up; exec sleep 300\"]\n"},
		uid:   1000,
	}.run(t)
	c.waitOutput(t, "web | web up", 30*time.Second)
	var out, errOut string
	var code int
	deadline := time.Now().Add(20 * time.Second)
	for {
		if out, errOut, code = c.exec(t, "tend", "ctl", "health"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tend ctl health as uid 1000: exit %d\n%s%s\noutput:\n%s", code, out, errOut, c.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out != "healthy\n" || !strings.Contains(c.output(), "control API on /tmp/tend-1000/tend.sock") {
		t.Fatalf("tend ctl health: %q\noutput:\n%s", out, c.output())
	}
	// The directory is the user's alone, the socket in it too.
	if out, errOut, code := c.exec(t, "ls", "-lnd", "/tmp/tend-1000", "/tmp/tend-1000/tend.sock"); code != 0 ||
		!regexp.MustCompile(`(?m)^drwx------\s+\d+\s+1000\s+1000 .*/tmp/tend-1000$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^srw-------\s+\d+\s+1000\s+1000 .*/tmp/tend-1000/tend.sock$`).MatchString(out) {
		t.Fatalf("ls -lnd: exit %d\n%s%s", code, out, errOut)
	}
	// Without TEND_CONFIG the default is the same.
	if out, errOut, code := c.exec(t, "sh", "-c", "unset TEND_CONFIG; exec tend ctl health"); code != 0 {
		t.Fatalf("tend ctl health without TEND_CONFIG: exit %d\n%s%s", code, out, errOut)
	}
	c.kill(t, "TERM")
	if res := c.wait(t, 30*time.Second); res.code != 0 {
		t.Fatalf("runc run exited %d after SIGTERM, want 0\noutput:\n%s", res.code, res.stdout)
	}
}
