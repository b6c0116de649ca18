package ctl

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/tend-init/tend/config"
)

// TestCLISaysWhyTendCannotBeReached is issue 18: a socket that is not
// there, or that nobody listens on, or that may not be used, is explained
// with what to set, by where its path came from.
func TestCLISaysWhyTendCannotBeReached(t *testing.T) {
	dir := t.TempDir()
	missing := dir + "/none.sock"
	stale := dir + "/stale.sock"
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close() // the file stays, as a killed tend leaves it
	cfg := dir + "/tend.toml"
	if err := os.WriteFile(cfg, []byte("control_socket = \""+missing+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	off := dir + "/off.toml"
	if err := os.WriteFile(off, []byte("control_socket = \"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, config string
		args         []string
		want         string
	}{
		{"no file, --socket", "", []string{"--socket", missing, "health"},
			"tend ctl: cannot reach tend at " + missing + ": no such file (is tend running, with this control_socket in its config?)\n"},
		{"no file, TEND_CONFIG", cfg, []string{"status"},
			"tend ctl: cannot reach tend at " + missing + ": no such file (is tend running? control_socket in " + cfg + " (TEND_CONFIG) says this path)\n"},
		{"TEND_CONFIG turns it off", off, []string{"logs", "-f"},
			`; ` + off + ` (TEND_CONFIG) has control_socket = "", which turns the control API off, so this is the default path` + "\n"},
		{"TEND_CONFIG unreadable", dir + "/nope.toml", []string{"events"},
			"; TEND_CONFIG names " + dir + "/nope.toml, which tend ctl could not read (no such file or directory), so this is the default path\n"},
		{"nobody listens", "", []string{"--socket", stale, "health"},
			"tend ctl: cannot reach tend at " + stale + ": connection refused (the file is there but no tend listens on it: tend has ended, or this is not its socket)\n"},
		{"nobody listens, stream", "", []string{"--socket", stale, "logs", "-f"},
			"tend ctl: cannot reach tend at " + stale + ": connection refused ("},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("TEND_CONFIG", c.config)
			var out, errw strings.Builder
			code := Main(c.args, &out, &errw)
			if code != 1 || !strings.Contains(errw.String(), c.want) {
				t.Fatalf("exit %d\n%s\nwant %q", code, errw.String(), c.want)
			}
		})
	}
}

// TestWhyNamesWhatToChange checks the explanations of what a test cannot
// make happen for real (root may use any socket; /run/tend.sock may be
// there).
func TestWhyNamesWhatToChange(t *testing.T) {
	dialErr := func(errno syscall.Errno) error {
		return &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", errno)}
	}
	cases := []struct {
		err  error
		want string
	}{
		{dialErr(syscall.ENOENT), "no such file (is tend running, as uid 0 and without control_socket? this is the default for uid 0: /run/tend.sock; " +
			"a tend that runs as another user has its socket at /tmp/tend-UID/tend.sock or in its $XDG_RUNTIME_DIR: pass --socket, or TEND_CONFIG with control_socket set)"},
		{dialErr(syscall.EACCES), "permission denied (only root and the user tend runs as may use its socket, mode 0600: run tend ctl as one of them)"},
		{dialErr(syscall.ECONNREFUSED), "connection refused (the file is there but no tend listens on it: tend has ended, or this is not its socket)"},
		{dialErr(syscall.EAGAIN), "tend is not taking new connections as fast as they come; try again"},
		{dialErr(syscall.EIO), "input/output error"},
		{errors.New("odd"), "odd"},
	}
	c := &client{socket: "/run/tend.sock", where: socketFrom{place: &config.SocketPlace{Path: "/run/tend.sock"}}}
	for _, tc := range cases {
		if got := c.why(tc.err); got != tc.want {
			t.Errorf("%v:\n got %s\nwant %s", tc.err, got, tc.want)
		}
	}
	user := &client{socket: "/tmp/tend-1000/tend.sock", where: socketFrom{place: &config.SocketPlace{Path: "/tmp/tend-1000/tend.sock", Dir: "/tmp/tend-1000", UID: 1000,
		Tried: []string{"/run/tend.sock (root's)", "$XDG_RUNTIME_DIR (it is not set)"}}}}
	if got, want := user.why(dialErr(syscall.ENOENT)), "no such file (is tend running, as uid 1000 and without control_socket? "+
		"this is the default for uid 1000: not /run/tend.sock (root's), not $XDG_RUNTIME_DIR (it is not set), so /tmp/tend-1000/tend.sock; "+
		"a tend that runs as another user, or with another XDG_RUNTIME_DIR, has its socket elsewhere: pass --socket, or TEND_CONFIG with control_socket set)"; got != want {
		t.Errorf("a user's default:\n got %s\nwant %s", got, want)
	}
	long := &client{socket: "/" + strings.Repeat("x", 120), where: socketFrom{flag: true}}
	if got := long.why(dialErr(syscall.EINVAL)); !strings.Contains(got, "longer than a unix socket's 107 bytes") {
		t.Errorf("a path too long: %s", got)
	}
}

// A default socket in a /tmp directory that is not the user's own is not
// dialled: a socket there could pose as tend.
func TestCLIRefusesADirectoryOfAnotherUser(t *testing.T) {
	dir := t.TempDir() // the test's: owned by another uid than 4242
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: dir + "/tend.sock", Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out, errw strings.Builder
	c := &client{socket: dir + "/tend.sock", out: &out, errw: &errw,
		where: socketFrom{place: &config.SocketPlace{Path: dir + "/tend.sock", Dir: dir, UID: 4242}}}
	if code := c.health(); code != 1 {
		t.Fatalf("tend ctl health: exit %d", code)
	}
	want := fmt.Sprintf("tend ctl: will not use %s/tend.sock: %s is owned by uid %d, not by uid 4242, so it is not used: another user may have made it to take the socket or to pose as tend; remove it, or pass --socket with the path tend listens on\n", dir, dir, os.Geteuid())
	if errw.String() != want || out.String() != "" {
		t.Fatalf("stderr %q\nwant   %q\nstdout %q", errw.String(), want, out.String())
	}
}
