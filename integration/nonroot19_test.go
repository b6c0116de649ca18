package integration

// Issue 19: with `USER app` the default socket under root's /run could not
// be made, and `tend ctl health` (the documented HEALTHCHECK) failed
// forever. tend and tend ctl run here as a user other than root, with no
// control_socket, and must meet at the same default path.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asUser is a run of the tend binary in dir as uid (and gid uid, no
// supplementary groups), with exactly env.
type asUser struct {
	uid int
	bin string
	env []string
}

func (u asUser) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, u.bin, args...)
	cmd.Env = u.env
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.uid), Groups: []uint32{}},
		Setpgid:    true,
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// ctl runs tend ctl as the user and returns its stdout, stderr and status.
func (u asUser) ctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := u.command(ctx, append([]string{"ctl"}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), exitCode(err)
}

// userBinary copies tend where any user may run it (the test binaries'
// directory is root's alone) and returns its path.
func userBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tend-user-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "tend")
	copyFile(t, tendBin, bin)
	return bin
}

func TestNonRootDefaultSocket(t *testing.T) {
	needRoot(t)
	bin := userBinary(t)
	// A uid of this run's own, so that runs side by side (and other
	// users of the machine) do not meet in /tmp/tend-UID.
	uid := 40000 + os.Getpid()%20000
	cfgDir := filepath.Dir(bin)
	cfg := filepath.Join(cfgDir, "tend.toml")
	if err := os.WriteFile(cfg, []byte("[services.web]\ncommand = [\"sleep\", \"300\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpDir := fmt.Sprintf("/tmp/tend-%d", uid)
	xdg := filepath.Join(cfgDir, "xdg")
	cases := []struct {
		name    string
		xdg     bool   // XDG_RUNTIME_DIR set to a directory of the user's own
		planted bool   // tmpDir made by root before tend starts
		ctlEnv  bool   // tend ctl gets TEND_CONFIG (else nothing but PATH)
		socket  string // where tend must listen
	}{
		{name: "in /tmp/tend-UID", socket: tmpDir + "/tend.sock"},
		{name: "in /tmp/tend-UID, tend ctl with TEND_CONFIG", ctlEnv: true, socket: tmpDir + "/tend.sock"},
		{name: "in XDG_RUNTIME_DIR", xdg: true, socket: xdg + "/tend.sock"},
		{name: "/tmp/tend-UID made by another user", planted: true, socket: tmpDir + "/tend.sock"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(tmpDir)
			t.Cleanup(func() { os.RemoveAll(tmpDir) })
			env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "TEND_CONFIG=" + cfg}
			if tc.xdg {
				if err := os.Mkdir(xdg, 0o700); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.RemoveAll(xdg) })
				if err := os.Chown(xdg, uid, uid); err != nil {
					t.Fatal(err)
				}
				env = append(env, "XDG_RUNTIME_DIR="+xdg)
			}
			if tc.planted {
				if err := os.Mkdir(tmpDir, 0o777); err != nil {
					t.Fatal(err)
				}
				os.Chmod(tmpDir, 0o777) // past the umask: anyone may put a socket there
			}
			u := asUser{uid: uid, bin: bin, env: env}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := u.command(ctx, "--config", cfg)
			var out, errb lockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// stop ends tend with a SIGTERM, as docker stop does, so that it
			// stops its service too; a SIGKILL to its group if that fails.
			stopped := false
			stop := func() int {
				stopped = true
				syscall.Kill(cmd.Process.Pid, syscall.SIGTERM)
				select {
				case err := <-done:
					return exitCode(err)
				case <-time.After(20 * time.Second):
					syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
					<-done
					t.Fatalf("tend did not exit after SIGTERM\n%s", errb.String())
					return -1
				}
			}
			defer func() {
				if !stopped {
					stop()
				}
			}()
			ctlUser := u
			if !tc.ctlEnv {
				ctlUser.env = env[:1]
				if tc.xdg {
					ctlUser.env = append(ctlUser.env, "XDG_RUNTIME_DIR="+xdg)
				}
			}

			if tc.planted {
				// tend refuses the directory and says what was tried; tend
				// ctl refuses it too, and does not dial what may be there.
				want := "control socket " + tc.socket + ": " + tmpDir + " is owned by uid 0, not by uid " + fmt.Sprint(uid)
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(errb.String(), "supervising 1 service") {
					if time.Now().After(deadline) {
						t.Fatalf("tend did not start\n%s", errb.String())
					}
					time.Sleep(20 * time.Millisecond)
				}
				log := errb.String()
				for _, w := range []string{want, "the control API is off", "not /run/tend.sock (root's), not $XDG_RUNTIME_DIR (it is not set), so " + tc.socket, "set control_socket to a path uid"} {
					if !strings.Contains(log, w) {
						t.Errorf("tend's log lacks %q:\n%s", w, log)
					}
				}
				stdout, stderr, code := ctlUser.ctl(t, "health")
				if code != 1 || !strings.Contains(stderr, "tend ctl: will not use "+tc.socket+": "+tmpDir+" is owned by uid 0") {
					t.Fatalf("tend ctl health: exit %d\n%s%s", code, stdout, stderr)
				}
				return
			}

			// tend ctl health as the same user: 0 once web runs.
			deadline := time.Now().Add(15 * time.Second)
			for {
				stdout, stderr, code := ctlUser.ctl(t, "health")
				if code == 0 && stdout == "healthy\n" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("tend ctl health as uid %d: exit %d\n%s%s\ntend's log:\n%s", uid, code, stdout, stderr, errb.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
			if !strings.Contains(errb.String(), "control API on "+tc.socket) {
				t.Fatalf("tend's log does not say it listens on %s:\n%s", tc.socket, errb.String())
			}
			fi, err := os.Lstat(filepath.Dir(tc.socket))
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || fi.Mode().Perm() != 0o700 || !fi.IsDir() {
				t.Fatalf("%s: %v, owner %d; want a directory of mode 0700 owned by %d", filepath.Dir(tc.socket), fi.Mode(), st.Uid, uid)
			}
			if sfi, err := os.Lstat(tc.socket); err != nil || sfi.Mode().Perm() != 0o600 || sfi.Mode()&os.ModeSocket == 0 {
				t.Fatalf("the socket: %v %v; want a socket of mode 0600", sfi, err)
			}
			// root's tend ctl, with no --socket, looks in /run and says where
			// a user's tend would be (unless a tend of root's runs here).
			if _, err := os.Lstat("/run/tend.sock"); os.IsNotExist(err) {
				res := run{env: []string{"TEND_CONFIG=", "XDG_RUNTIME_DIR="}, args: []string{"ctl", "health"}}.do(t)
				if res.code != 1 || !strings.Contains(res.stderr, "/tmp/tend-UID/tend.sock or in its $XDG_RUNTIME_DIR: pass --socket") {
					t.Errorf("root's tend ctl health: exit %d\n%s%s", res.code, res.stdout, res.stderr)
				}
			}
			if res := (run{args: []string{"ctl", "--socket", tc.socket, "health"}}).do(t); res.code != 0 {
				t.Errorf("root's tend ctl --socket %s health: exit %d\n%s%s", tc.socket, res.code, res.stdout, res.stderr)
			}
			// A SIGTERM ends it cleanly.
			if code := stop(); code != 0 {
				t.Fatalf("tend exited %d after SIGTERM\n%s", code, errb.String())
			}
		})
	}
}
