package integration

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tend-init/tend/integration/vm"
)

// The VM tests boot Debian's kernel in QEMU (TCG: no KVM here) with an
// initramfs whose /init is tend and whose programs are busybox-static, and
// read the serial console. They need qemu-system-x86, linux-image-amd64 and
// busybox-static; with CI=true a missing one is a failure.

const busybox = "/bin/busybox"

// applets are the busybox commands the initramfs links.
var applets = []string{"sh", "cat", "echo", "sleep", "dmesg", "grep", "hostname", "wget", "httpd", "kill", "awk", "tr", "ip", "ls", "ps", "mount", "setsid"}

// needVM stops a test that cannot boot a VM here: a skip on a developer's
// machine, a failure in CI.
func needVM(t *testing.T) (kernel string) {
	t.Helper()
	why := ""
	kernels, _ := filepath.Glob("/boot/vmlinuz-*")
	sort.Strings(kernels)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		why = "needs qemu-system-x86_64 (package qemu-system-x86)"
	} else if len(kernels) == 0 {
		why = "needs a kernel in /boot (package linux-image-amd64)"
	} else if _, err := os.Stat(busybox); err != nil {
		why = "needs " + busybox + " (package busybox-static)"
	} else if f, err := os.Open(kernels[len(kernels)-1]); err != nil {
		why = "cannot read the kernel: " + err.Error()
	} else {
		f.Close()
		return kernels[len(kernels)-1]
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run in CI: %s", why)
	}
	t.Skip(why)
	return ""
}

// boot describes one VM run.
type boot struct {
	init    string            // the binary that becomes /init
	files   map[string]string // more files; a name ending in .sh is executable
	args    string            // appended to the kernel command line
	monitor bool              // open a QEMU monitor socket
	limit   time.Duration     // the whole run, default 60s
}

// booted is a finished (or running) VM.
type booted struct {
	console *lockedBuffer
	monitor string // the monitor socket, when asked for
	done    chan error
	start   time.Time
}

// baseCmdline: the serial console, no kernel chatter, a kernel panic ends
// QEMU at once (with -no-reboot) instead of hanging.
const baseCmdline = "console=ttyS0 panic=-1 quiet printk.time=1"

func (b boot) run(t *testing.T, kernel string) *booted {
	t.Helper()
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initramfs.cpio")
	if err := b.initramfs(initrd); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-accel", "tcg", "-m", "256", "-smp", "1", "-nographic", "-no-reboot", "-nic", "none",
		"-kernel", kernel, "-initrd", initrd,
		"-append", baseCmdline + " " + b.args,
	}
	bt := &booted{console: &lockedBuffer{}, done: make(chan error, 1)}
	if b.monitor {
		bt.monitor = filepath.Join(dir, "monitor.sock")
		args = append(args, "-monitor", "unix:"+bt.monitor+",server=on,wait=off")
	} else {
		args = append(args, "-monitor", "none")
	}
	limit := b.limit
	if limit == 0 {
		limit = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Stdout, cmd.Stderr = bt.console, bt.console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	bt.start = time.Now()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		err := cmd.Wait()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		bt.done <- err
	}()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return bt
}

// initramfs writes the archive: tend as /init, busybox and its links,
// the extra files. No /dev entries: the kernel's built-in initramfs has
// /dev/console, and tend mounts devtmpfs.
func (b boot) initramfs(out string) error {
	var buf bytes.Buffer
	a := vm.New(&buf)
	a.CopyFile("init", b.init)
	a.CopyFile("bin/busybox", busybox)
	for _, app := range applets {
		a.Symlink("bin/"+app, "busybox")
	}
	a.Dir("etc", 0o755)
	a.Dir("tmp", 0o777|os.ModeSticky)
	names := make([]string, 0, len(b.files))
	for name := range b.files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		perm := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			perm = 0o755
		}
		a.File(name, perm, []byte(b.files[name]))
	}
	if err := a.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// wait returns the console once QEMU has exited by itself.
func (bt *booted) wait(t *testing.T) string {
	t.Helper()
	err := <-bt.done
	console := cleanConsole(bt.console.String())
	t.Logf("QEMU ran %s", time.Since(bt.start).Round(100*time.Millisecond))
	if err != nil {
		t.Fatalf("QEMU did not exit cleanly by itself: %v\nconsole:\n%s", err, console)
	}
	return console
}

// waitConsole waits until the console shows want.
func (bt *booted) waitConsole(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(cleanConsole(bt.console.String()), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q on the console within %s\nconsole:\n%s", want, limit, cleanConsole(bt.console.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command sends one line to the QEMU monitor.
func (bt *booted) command(t *testing.T, line string) {
	t.Helper()
	c, err := net.Dial("unix", bt.monitor)
	if err != nil {
		t.Fatalf("QEMU monitor: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatalf("QEMU monitor: %v", err)
	}
	// Let the monitor read the line before the connection goes.
	time.Sleep(200 * time.Millisecond)
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[a-zA-Z]|\x1bc`)

// cleanConsole drops the serial line's carriage returns and logrus's
// colours (the console is a terminal).
func cleanConsole(s string) string {
	return ansi.ReplaceAllString(strings.ReplaceAll(s, "\r", ""), "")
}

// noKernelPanic fails when PID 1 died instead of powering off.
func noKernelPanic(t *testing.T, console string) {
	t.Helper()
	for _, bad := range []string{"Attempted to kill init", "Kernel panic", "fatal error:", "goroutine "} {
		if strings.Contains(console, bad) {
			t.Errorf("console shows %q\nconsole:\n%s", bad, console)
		}
	}
}

func mustContain(t *testing.T, console string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q", want)
		}
	}
	if t.Failed() {
		t.Fatalf("console:\n%s", console)
	}
}

const vmConfig = `hostname = "tendvm"
shutdown_timeout = "5s"

# The first service: it stamps the kernel log, so the time from the
# kernel handing over to /init until now can be read on one clock.
[services.boot]
command = ["/bin/sh", "-c", "echo tend-first-service >/dev/kmsg; dmesg | grep -e 'Run /init' -e tend-first-service"]
oneshot = true

# Fails twice, then succeeds: restarted per its policy.
[services.flaky]
command = ["/bin/sh", "-c", "n=$(cat /run/flaky 2>/dev/null || echo 0); n=$((n+1)); echo $n >/run/flaky; echo flaky run $n; [ $n -ge 3 ]"]
oneshot = true
restart = "on-failure"
max_restarts = 2
backoff = { type = "fixed", delay = "200ms" }
depends_on = ["boot"]

# A web server on the loopback interface; ready once it accepts.
[services.web]
command = ["httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www"]
depends_on = ["boot"]
[services.web.ready]
tcp = "127.0.0.1:8080"
interval = "100ms"
`

const vmMain = `echo "main: hostname=$(hostname)"
echo "main: mounts=$(awk '{printf "%s:%s ", $2, $3}' /proc/mounts)"
echo "main: lo=$(ip -o link show lo | grep -o '<[^>]*>')"
echo "main: page=$(wget -q -O - http://127.0.0.1:8080/index.html)"
echo "main: console=$(ls -l /proc/self/fd/0 | awk '{print $NF}') path=$PATH"
exit 7
`

// TestVMBoot boots tend as a kernel's /init in supervisor mode with a main
// program, and reads the whole run off the serial console.
func TestVMBoot(t *testing.T) {
	kernel := needVM(t)
	t.Parallel()
	bt := boot{
		init: tendBin,
		files: map[string]string{
			"etc/tend.toml":  vmConfig,
			"etc/main.sh":    vmMain,
			"www/index.html": "hello from tend's VM\n",
		},
		// Unknown NAME=value words become init's environment; the
		// words after -- its arguments.
		args: "TEND_CONFIG=/etc/tend.toml -- /bin/sh /etc/main.sh",
	}.run(t, kernel)
	console := bt.wait(t)
	t.Logf("console:\n%s", console)
	noKernelPanic(t, console)
	mustContain(t, console,
		"vm: machine set up",
		"boot | ",
		"flaky | flaky run 1", "flaky | flaky run 2", "flaky | flaky run 3",
		"ready: tcp check passed",
		"main: hostname=tendvm",
		"/proc:proc", "/sys:sysfs", "/sys/fs/cgroup:cgroup2", "/dev:devtmpfs", "/dev/pts:devpts", "/dev/shm:tmpfs", "/run:tmpfs",
		"UP",
		"main: page=hello from tend's VM",
		"path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"main program ended: exit code 7",
		"tend: exit status 7",
		"reboot: Power down",
	)
	if n := strings.Count(console, "flaky run "); n != 3 {
		t.Errorf("flaky ran %d times, want 3 (two restarts on failure)", n)
	}
	// The web server was stopped by the shutdown, after the main program.
	if i, j := strings.Index(console, "main program ended"), strings.Index(console, "running → stopping: shutdown"); i < 0 || j < i {
		t.Errorf("web was not stopped after the main program ended")
	}
	if i, j := strings.Index(console, "tend: exit status 7"), strings.Index(console, "reboot: Power down"); j < i {
		t.Errorf("the status was not printed before the power-off")
	}
	reportHandover(t, console)
}

// kernelStamp matches a kernel log line as dmesg prints it.
var kernelStamp = regexp.MustCompile(`\[\s*([0-9]+\.[0-9]+)\] (Run /init as init process|tend-first-service)`)

// reportHandover prints the time from the kernel starting /init until the
// first service ran, both read from the kernel's log clock.
func reportHandover(t *testing.T, console string) {
	t.Helper()
	stamps := map[string]float64{}
	for _, m := range kernelStamp.FindAllStringSubmatch(console, -1) {
		if v, err := strconv.ParseFloat(m[1], 64); err == nil {
			stamps[m[2]] = v
		}
	}
	handover, ok1 := stamps["Run /init as init process"]
	first, ok2 := stamps["tend-first-service"]
	if !ok1 || !ok2 {
		t.Errorf("no kernel time stamps for the handover and the first service")
		return
	}
	t.Logf("kernel handed over to /init at %.3fs; first service ran at %.3fs: handover → first service %.1f ms (TCG, no KVM)",
		handover, first, (first-handover)*1000)
	if first < handover {
		t.Errorf("first service before the handover?")
	}
}

// TestVMPanicPowersOff boots the test build that panics 300 ms after start:
// the panic is logged, the services are stopped, and the machine powers off
// instead of the kernel's "Attempted to kill init".
func TestVMPanicPowersOff(t *testing.T) {
	kernel := needVM(t)
	t.Parallel()
	bt := boot{
		init: panicBin,
		files: map[string]string{"etc/tend.toml": `[services.sleeper]
command = ["/bin/sh", "-c", "echo sleeper up; exec sleep 1000"]
`},
		// Under TCG the service may need more than the 300 ms a panic
		// build waits by default to print its first line (the test failed
		// so once in .ci/run).
		args: "TEND_CONFIG=/etc/tend.toml TEND_PANIC_AFTER=3s",
	}.run(t, kernel)
	console := bt.wait(t)
	t.Logf("console:\n%s", console)
	mustContain(t, console,
		"sleeper | sleeper up",
		"panic in injected fault: injected panic",
		"running → stopping",
		"tend: exit status 1",
		"reboot: Power down",
	)
	for _, bad := range []string{"Attempted to kill init", "Kernel panic"} {
		if strings.Contains(console, bad) {
			t.Errorf("console shows %q", bad)
		}
	}
}

// TestVMCtrlAltDelReboots presses Ctrl-Alt-Del through the QEMU monitor:
// the kernel sends SIGINT to init (tend disabled its own reboot), tend stops
// the services and reboots; -no-reboot makes QEMU exit on the reboot.
func TestVMCtrlAltDelReboots(t *testing.T) {
	kernel := needVM(t)
	t.Parallel()
	bt := boot{
		init: tendBin,
		files: map[string]string{"etc/tend.toml": `[services.sleeper]
command = ["/bin/sh", "-c", "trap 'echo sleeper got TERM; exit 0' TERM; echo sleeper up; while :; do sleep 0.1; done"]
`},
		args:    "TEND_CONFIG=/etc/tend.toml",
		monitor: true,
	}.run(t, kernel)
	bt.waitConsole(t, "sleeper | sleeper up", 45*time.Second)
	bt.command(t, "sendkey ctrl-alt-delete")
	console := bt.wait(t)
	t.Logf("console:\n%s", console)
	noKernelPanic(t, console)
	mustContain(t, console,
		"received SIGINT: shutting down, then reboot",
		"sleeper | sleeper got TERM",
		"tend: exit status 0",
		"reboot: Restarting system",
	)
	if strings.Contains(console, "reboot: Power down") {
		t.Errorf("powered off instead of rebooting")
	}
}

// TestVMWrapperPowerOff runs wrapper mode as /init (`tend -- prog`): the
// program sends SIGPWR to PID 1, which powers the machine off after
// stopping the program with SIGTERM. (QEMU's system_powerdown cannot be
// used: it is an ACPI button event, and with no acpid in the machine the
// kernel tells init nothing.)
func TestVMWrapperPowerOff(t *testing.T) {
	kernel := needVM(t)
	t.Parallel()
	bt := boot{
		init: tendBin,
		files: map[string]string{"etc/wrapped.sh": `echo "wrapped: up as $$, hostname=$(hostname)"
trap 'echo wrapped: got TERM; exit 42' TERM
kill -PWR 1
while :; do sleep 0.1; done
`},
		args: "-- -v /bin/sh /etc/wrapped.sh",
	}.run(t, kernel)
	console := bt.wait(t)
	t.Logf("console:\n%s", console)
	noKernelPanic(t, console)
	mustContain(t, console,
		"wrapped: up as",
		"received SIGPWR: shutting down, then power off",
		"wrapped: got TERM",
		"tend: exit status 42",
		"reboot: Power down",
	)
}

// TestVMModeInPIDNamespace runs --vm as PID 1 of a PID namespace, where
// reboot(2) ends the namespace instead of the machine: its parent sees the
// init killed by SIGINT for a power-off and SIGHUP for a reboot. Quick,
// and it needs no QEMU: signals and `tend ctl poweroff|reboot`.
func TestVMModeInPIDNamespace(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tend.toml")
	socket := filepath.Join(dir, "tend.sock")
	if err := os.WriteFile(cfg, []byte(`hostname = "nsvm"
control_socket = "`+socket+`"
[services.a]
command = ["sh", "-c", "echo a on $(hostname); exec sleep 100"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	poweredOff, rebooted := 128+int(syscall.SIGINT), 128+int(syscall.SIGHUP)
	for _, c := range []struct {
		name string
		send syscall.Signal // or
		ctl  string
		want int // 128 + the signal that killed the namespace's init
		why  string
	}{
		{"SIGTERM", syscall.SIGTERM, "", poweredOff, "received SIGTERM: shutting down, then power off"},
		{"SIGPWR", syscall.SIGPWR, "", poweredOff, "received SIGPWR: shutting down, then power off"},
		{"SIGINT", syscall.SIGINT, "", rebooted, "received SIGINT: shutting down, then reboot"},
		{"ctl-poweroff", 0, "poweroff", poweredOff, "tend ctl poweroff: shutting down, then power off"},
		{"ctl-reboot", 0, "reboot", rebooted, "tend ctl reboot: shutting down, then reboot"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run{pid1: true, args: []string{"--vm", "--config", cfg}}
			cmd := r.command(context.Background())
			// A UTS namespace too, so that the hostname is the
			// namespace's.
			cmd.Args = append([]string{cmd.Args[0], "--uts"}, cmd.Args[1:]...)
			s := startCmd(t, cmd)
			s.waitOutput(t, "a | a on nsvm", 10*time.Second)
			if c.ctl != "" {
				out, err := exec.Command(tendBin, "ctl", "--socket", socket, c.ctl).CombinedOutput()
				if err != nil {
					t.Fatalf("tend ctl %s: %v\n%s", c.ctl, err, out)
				}
			} else if err := syscall.Kill(s.tendPid(t, true), c.send); err != nil {
				t.Fatal(err)
			}
			res := s.wait(t, 15*time.Second)
			if res.code != c.want {
				t.Errorf("exit %d, want %d (the namespace's init killed as by reboot(2))\nstderr:\n%s", res.code, c.want, res.stderr)
			}
			for _, want := range []string{c.why, "tend: exit status 0"} {
				if !strings.Contains(res.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
				}
			}
		})
	}
}

// TestVMModeBadConfig: a VM's init with an invalid config cannot exit
// either: it reports every error, prints status 2 and powers off.
func TestVMModeBadConfig(t *testing.T) {
	needRoot(t)
	cfg := filepath.Join(t.TempDir(), "tend.toml")
	if err := os.WriteFile(cfg, []byte("[services.a]\ncommand = [\"true\"]\nrestart = \"sometimes\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := run{pid1: true, args: []string{"--vm", "--config", cfg}}.do(t)
	if res.code != 128+int(syscall.SIGINT) {
		t.Errorf("exit %d, want %d (powered off)\nstderr:\n%s", res.code, 128+int(syscall.SIGINT), res.stderr)
	}
	for _, want := range []string{"restart", "tend: exit status 2"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, res.stderr)
		}
	}
}

// startCmd is run.start for a prepared command.
func startCmd(t *testing.T, cmd *exec.Cmd) *started {
	t.Helper()
	s := &started{cmd: cmd, out: &lockedBuffer{}, errb: &lockedBuffer{}, done: make(chan result, 1)}
	cmd.Stdout, cmd.Stderr = s.out, s.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		s.done <- result{stdout: s.out.String(), stderr: s.errb.String(), code: exitCode(err)}
	}()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return s
}

// TestVMCgroupLimitsApplied: in a VM tend is in the root cgroup, which may
// hold processes and still pass the memory and pids controllers to its
// children, so memory_max and pids_max apply: the service reads them from
// its own cgroup. (Where tend's cgroup holds tend and the controllers were
// not enabled for it, they cannot; TestCgroupLimitsWritten checks that
// the status says so.)
func TestVMCgroupLimitsApplied(t *testing.T) {
	kernel := needVM(t)
	t.Parallel()
	bt := boot{
		init: tendBin,
		files: map[string]string{"etc/tend.toml": `[services.cg]
command = ["/bin/sh", "-c", "d=/sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup); echo mem=$(cat $d/memory.max) pids=$(cat $d/pids.max)"]
restart = "never"
memory_max = "64M"
pids_max = 50
`},
		args: "TEND_CONFIG=/etc/tend.toml",
	}.run(t, kernel)
	console := bt.wait(t)
	t.Logf("console:\n%s", console)
	noKernelPanic(t, console)
	mustContain(t, console, "cg | mem=67108864 pids=50", "reboot: Power down")
}
