package pid1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/cli"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
)

// vm is tend as the first process of a virtual machine (SPEC section 9):
// it sets the machine up before supervising, and where it would exit it
// powers the machine off (or reboots it) instead.
type vm struct {
	kernel bool // started by the kernel: PID 1 and /proc not mounted
	pid1   bool

	mu      sync.Mutex
	log     *logrus.Logger
	asked   bool           // a power-off or reboot was asked for
	action  signals.Action // signals.PowerOff or signals.Reboot
	deliver func(a signals.Action, first bool)
}

// detectVM returns the VM state when tend runs as a VM's init: PID 1 with
// /proc not mounted (a kernel started it as /init or init=), or --vm.
func detectVM(o cli.Options) *vm {
	pid1 := os.Getpid() == 1
	kernel := pid1 && !procMounted()
	if !kernel && !o.VM {
		return nil
	}
	return &vm{kernel: kernel, pid1: pid1, action: signals.PowerOff}
}

func procMounted() bool {
	var st unix.Statfs_t
	return unix.Statfs("/proc", &st) == nil && st.Type == unix.PROC_SUPER_MAGIC
}

func (v *vm) logger() *logrus.Logger {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.log
}

func (v *vm) setLogger(log *logrus.Logger) {
	v.mu.Lock()
	v.log = log
	v.mu.Unlock()
}

// Request asks for the machine to be powered off or rebooted after a
// graceful shutdown. The first request decides which; a later one of either
// kind hurries the shutdown along, as a second SIGTERM does.
func (v *vm) Request(a signals.Action, why string) {
	v.mu.Lock()
	first := !v.asked
	if first {
		v.asked, v.action = true, a
	}
	deliver, log := v.deliver, v.log
	v.mu.Unlock()
	if log != nil {
		if first {
			log.Infof("%s: shutting down, then %s", why, v.verb(a))
		} else {
			log.Warnf("%s during shutdown: not waiting any longer", why)
		}
	}
	if deliver != nil {
		deliver(a, first)
	}
}

func (v *vm) SetDeliver(d func(a signals.Action, first bool)) {
	v.mu.Lock()
	v.deliver = d
	v.mu.Unlock()
}

func (v *vm) verb(a signals.Action) string {
	if a == signals.Reboot {
		return "reboot"
	}
	return "power off"
}

// mount is one of the file systems a VM's init provides.
type mount struct {
	target, fstype string
	flags          uintptr
	data           string
	mode           os.FileMode
}

var vmMounts = []mount{
	{"/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", 0o555},
	{"/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "", 0o555},
	// cgroup v2: each service gets a cgroup of its own (package tree).
	{"/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "nsdelegate", 0o555},
	{"/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755", 0o755},
	{"/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666", 0o755},
	{"/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777", 0o1777},
	{"/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755", 0o755},
}

// mountAll mounts what is not mounted yet. A failure is a warning: a
// machine without /sys can still run its services.
func (v *vm) mountAll(log *logrus.Logger) {
	for _, m := range vmMounts {
		if isMountPoint(m.target) {
			log.Debugf("vm: %s is already mounted", m.target)
			continue
		}
		if err := os.MkdirAll(m.target, m.mode); err != nil {
			log.Warnf("vm: cannot create %s: %v", m.target, err)
			continue
		}
		if err := unix.Mount(m.fstype, m.target, m.fstype, m.flags, m.data); err != nil {
			log.Warnf("vm: cannot mount %s on %s: %v", m.fstype, m.target, err)
			continue
		}
		log.Debugf("vm: mounted %s on %s", m.fstype, m.target)
	}
	// The links udev or systemd would make; shells use /dev/fd and
	// /dev/stdout. One that exists already is left alone.
	for link, to := range map[string]string{
		"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
		"/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(to, link); err != nil && !errors.Is(err, os.ErrExist) {
			log.Debugf("vm: cannot link %s: %v", link, err)
		}
	}
}

// isMountPoint: statx says so directly (Linux 5.8); before that, a path on
// another device than its parent is a mount point.
func isMountPoint(path string) bool {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT, unix.STATX_BASIC_STATS, &stx)
	if err != nil {
		return false
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	var parent unix.Stat_t
	if unix.Lstat(filepath.Dir(path), &parent) != nil {
		return false
	}
	return uint64(parent.Dev) != unix.Mkdev(stx.Dev_major, stx.Dev_minor)
}

// attachConsole puts /dev/console on descriptors 0, 1 and 2 where they are
// missing. The Go runtime itself opens /dev/null on a closed standard
// descriptor before tend runs, so when the kernel started tend a
// /dev/null there counts as missing too.
func (v *vm) attachConsole(log *logrus.Logger) {
	var need []int
	for fd := 0; fd < 3; fd++ {
		var st unix.Stat_t
		err := unix.Fstat(fd, &st)
		switch {
		case errors.Is(err, unix.EBADF):
			need = append(need, fd)
		case err == nil && v.kernel && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3):
			need = append(need, fd)
		}
	}
	if len(need) == 0 {
		return
	}
	c, err := unix.Open("/dev/console", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		log.Warnf("vm: cannot open /dev/console for descriptors %v: %v", need, err)
		return
	}
	for _, fd := range need {
		if err := unix.Dup3(c, fd, 0); err != nil {
			log.Warnf("vm: cannot put the console on descriptor %d: %v", fd, err)
		}
	}
	if c > 2 {
		unix.Close(c)
	}
}

// setUp is the early part of a VM's boot that needs no config: file
// systems, the console and PATH. It runs before the config is read so that
// a bad config is still reported on the console.
func (v *vm) setUp(log *logrus.Logger) {
	v.mountAll(log)
	v.attachConsole(log)
	// The kernel gives init only HOME and TERM (and the unknown NAME=value
	// words of its command line); services expect a PATH.
	if _, ok := os.LookupEnv("PATH"); !ok {
		os.Setenv("PATH", reaper.DefaultPath)
	}
}

// configure is the part that needs the config (the hostname) and the real
// logger: hostname, loopback, Ctrl-Alt-Del.
func (v *vm) configure(hostname string, log *logrus.Logger) {
	v.setLogger(log)
	if hostname != "" {
		if err := unix.Sethostname([]byte(hostname)); err != nil {
			log.Warnf("vm: cannot set the hostname to %q: %v", hostname, err)
		}
	}
	if err := loopbackUp(); err != nil {
		log.Warnf("vm: cannot bring up the loopback interface: %v", err)
	}
	// Ctrl-Alt-Del: without this the kernel reboots at once; with it the
	// kernel sends SIGINT to init, which shuts down first. Only the real
	// init may do this (in a PID namespace the kernel refuses it).
	if v.pid1 {
		if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
			lvl := logrus.DebugLevel
			if v.kernel {
				lvl = logrus.WarnLevel
			}
			log.Logf(lvl, "vm: cannot hand Ctrl-Alt-Del to init: %v", err)
		}
	}
	log.Infof("vm: machine set up (uptime %s)", uptime())
}

// loopbackUp sets IFF_UP on lo; the kernel then gives it 127.0.0.1 and ::1.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	flags := ifr.Uint16()
	if flags&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(flags | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// uptime is the time since boot (CLOCK_BOOTTIME), the clock of the
// kernel's own log.
func uptime() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano()).Round(time.Millisecond)
}

// end is where a VM's init would exit: everything has been stopped and
// reaped already. It syncs, prints the status on the console and powers
// off or reboots. It returns only when it cannot (not PID 1, or the kernel
// refused), with the status to exit with.
func (v *vm) end(code int) int {
	v.mu.Lock()
	action, log := v.action, v.log
	v.mu.Unlock()
	if log == nil {
		log = newLogger(0, nil)
	}
	unix.Sync()
	flushLog() // the status line comes after everything logged before it
	fmt.Fprintf(os.Stderr, "tend: exit status %d\n", code)
	if !v.pid1 {
		log.Warnf("vm: not PID 1: exiting instead of %s", v.verbing(action))
		flushLog()
		return code
	}
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if action == signals.Reboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	log.Infof("vm: %s", v.verbing(action))
	flushLog()
	drainConsole()
	// Returns only on failure. In a PID namespace the kernel ends the
	// namespace instead (its parent sees its init killed by SIGINT for a
	// power-off, SIGHUP for a reboot).
	err := unix.Reboot(cmd)
	if cmd != unix.LINUX_REBOOT_CMD_POWER_OFF {
		log.Errorf("vm: cannot reboot (%v): powering off instead", err)
		err = unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
	log.Errorf("vm: cannot power off: %v", err)
	flushLog()
	if !v.kernel {
		return code // a container's init: exiting ends it
	}
	// The exit of a kernel's init panics the kernel; halting is better.
	err = unix.Reboot(rebootCmd(unix.LINUX_REBOOT_CMD_HALT))
	log.Errorf("vm: cannot halt either (%v): waiting forever", err)
	for {
		time.Sleep(time.Hour)
	}
}

// drainConsole waits (briefly) until the terminal on stdout and stderr has
// sent what was written to it: a serial line transmits after write returns,
// and the power-off would cut the last lines.
func drainConsole() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, fd := range []int{1, 2} {
			if isTerminal(fd) {
				_ = unix.IoctlSetInt(fd, unix.TCSBRK, 1) // tcdrain
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
	}
}

func (v *vm) verbing(a signals.Action) string {
	if a == signals.Reboot {
		return "rebooting"
	}
	return "powering off"
}

// Exit is for the exits main.go makes before Main (a bad command line, no
// program, --help, check): tend started by a kernel as its init must not
// exit, so it powers off with that status instead. Anywhere else it
// returns code.
func Exit(code int) int {
	if os.Getpid() != 1 || procMounted() {
		return code
	}
	v := &vm{kernel: true, pid1: true, action: signals.PowerOff}
	return v.end(code)
}

// power is the control API's `tend ctl poweroff` and `tend ctl reboot`:
// the same as SIGTERM and SIGINT to a VM's init.
func (v *vm) power(reboot bool) error {
	if v == nil {
		return errors.New("tend is not a VM's init (start it with --vm)")
	}
	a, verb := signals.PowerOff, "poweroff"
	if reboot {
		a, verb = signals.Reboot, "reboot"
	}
	v.Request(a, "tend ctl "+verb)
	return nil
}

// rebootCmd is a reboot(2) command as unix.Reboot takes it, an int: HALT
// (0xCDEF0123) does not fit a 32-bit int as a constant. The kernel reads an
// unsigned int, so the same 32 bits, sign-extended or not, are the command.
func rebootCmd(cmd uint32) int { return int(int32(cmd)) }
