package tree

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
)

// cgroupMount is where tend looks for the cgroup v2 tree; VM mode mounts
// it there.
var cgroupMount = "/sys/fs/cgroup"

// cgroups is tend's part of a cgroup v2 tree: one child per service under
// the cgroup tend was started in.
type cgroups struct {
	root string // tend's own cgroup directory

	mu      sync.Mutex
	made    map[string]bool // service → its directory was made by tend
	ino     *os.File        // inotify on the cgroup.events of draining runs
	watches map[int]*Run    // inotify watch → run
}

// openCgroups finds tend's cgroup and checks it can take a child; it
// returns nil and the reason when it cannot: tend never requires a cgroup.
func openCgroups() (*cgroups, string) {
	var fs unix.Statfs_t
	if err := unix.Statfs(cgroupMount, &fs); err != nil {
		return nil, fmt.Sprintf("no cgroup file system at %s", cgroupMount)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Sprintf("%s is not a cgroup v2 tree (cgroup v1 or none)", cgroupMount)
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Sprintf("cannot read /proc/self/cgroup: %v", err)
	}
	own := ""
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			own = rest
		}
	}
	if own == "" || strings.HasSuffix(own, " (deleted)") {
		return nil, "tend's cgroup v2 path is not known (/proc/self/cgroup)"
	}
	root := filepath.Join(cgroupMount, own)
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		// Outside a cgroup namespace the path is the host's, which this
		// mount may not show.
		return nil, fmt.Sprintf("tend's cgroup %s is not under %s", own, cgroupMount)
	}
	if other := foreignProcess(root); other != "" {
		// Not tend's to divide: another tend (or anything) in the same
		// cgroup would share the services' directories. In a container
		// tend is alone in its cgroup; in a VM the root holds only
		// kernel threads besides it.
		return nil, fmt.Sprintf("tend's cgroup %s also holds %s", root, other)
	}
	probe := filepath.Join(root, fmt.Sprintf("tend-probe-%d", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Sprintf("cannot make a child of tend's cgroup %s: %v", root, errors.Unwrap(err))
	}
	_ = os.Remove(probe)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Sprintf("no inotify to watch cgroup.events: %v", err)
	}
	cg := &cgroups{root: root, made: map[string]bool{}, ino: os.NewFile(uintptr(fd), "inotify"), watches: map[int]*Run{}}
	guard.Go("cgroup events", cg.readEvents)
	return cg, ""
}

// foreignProcess names a process in the cgroup that is neither tend nor a
// kernel thread; "" when there is none. A process outside tend's PID
// namespace is listed as 0.
func foreignProcess(root string) string {
	self := os.Getpid()
	for _, pid := range cgroupProcs(root) {
		switch {
		case pid == self:
		case pid == 0:
			return "processes outside tend's PID namespace"
		case isKernelThread(pid):
		default:
			return "process " + strconv.Itoa(pid)
		}
	}
	return ""
}

// isKernelThread reads PF_KTHREAD from /proc/PID/stat's flags.
func isKernelThread(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // gone: not in the way
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	const pfKthread = 0x00200000
	return err == nil && flags&pfKthread != 0
}

// dir is a service's cgroup: "<name>.service", as systemd names its units,
// so it cannot clash with tend's own or a container runtime's directories.
func (cg *cgroups) dir(service string) string {
	return filepath.Join(cg.root, service+".service")
}

// prepare makes the service's cgroup if needed and opens it for
// CLONE_INTO_CGROUP.
func (cg *cgroups) prepare(service string) (string, int, error) {
	dir := cg.dir(service)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", -1, fmt.Errorf("cannot make cgroup %s: %v", dir, errors.Unwrap(err))
	}
	cg.mu.Lock()
	cg.made[service] = true
	cg.mu.Unlock()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", -1, fmt.Errorf("cannot open cgroup %s: %v", dir, err)
	}
	return dir, fd, nil
}

func (cg *cgroups) remove(service string) {
	cg.mu.Lock()
	made := cg.made[service]
	delete(cg.made, service)
	cg.mu.Unlock()
	if made {
		_ = unix.Rmdir(cg.dir(service))
	}
}

func (cg *cgroups) removeAll() {
	cg.mu.Lock()
	names := make([]string, 0, len(cg.made))
	for name := range cg.made {
		names = append(names, name)
	}
	cg.mu.Unlock()
	for _, name := range names {
		cg.remove(name)
	}
}

// watch asks to hear of every change of run's cgroup.events (the kernel
// reports "populated" changes as a modification).
func (cg *cgroups) watch(run *Run) {
	wd, err := unix.InotifyAddWatch(int(cg.ino.Fd()), filepath.Join(run.cgroup, "cgroup.events"), unix.IN_MODIFY)
	if err != nil {
		return // the cgroup is gone already: lookAgain finds it empty
	}
	cg.mu.Lock()
	cg.watches[wd] = run
	cg.mu.Unlock()
}

// readEvents runs for tend's life, asleep in read(2) between events.
func (cg *cgroups) readEvents() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := cg.ino.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int(int32(binary.NativeEndian.Uint32(buf[off:])))
			size := int(binary.NativeEndian.Uint32(buf[off+12:]))
			off += unix.SizeofInotifyEvent + size
			cg.mu.Lock()
			run := cg.watches[wd]
			cg.mu.Unlock()
			if run == nil {
				continue
			}
			run.t.lookAgain(run)
			run.t.mu.Lock()
			over := run.emptied
			run.t.mu.Unlock()
			if over {
				cg.mu.Lock()
				delete(cg.watches, wd)
				cg.mu.Unlock()
				_, _ = unix.InotifyRmWatch(int(cg.ino.Fd()), uint32(wd))
			}
		}
	}
}

// populated reads "populated" from a cgroup's cgroup.events.
func populated(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return false // removed: nothing in it
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "populated "); ok {
			return strings.TrimSpace(v) != "0"
		}
	}
	return false
}

func cgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if pid, err := strconv.Atoi(sc.Text()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func signalCgroup(dir string, sig unix.Signal) {
	for _, pid := range cgroupProcs(dir) {
		_ = unix.Kill(pid, sig)
	}
}

// killCgroup ends every process in the cgroup: cgroup.kill (Linux 5.14)
// kills them all at once, forks in flight included; before it, one SIGKILL
// per process, a few rounds for those forked meanwhile.
func killCgroup(dir string) {
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err == nil {
		return
	}
	for range 3 {
		pids := cgroupProcs(dir)
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}
