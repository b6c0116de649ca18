package spawner

import (
	"os"
	"runtime"
	"runtime/debug"
	"syscall"

	"golang.org/x/sys/unix"
)

// Magic is the argument that makes the tend binary the spawner: tend starts
// /proc/self/exe with it, and main recognises it before anything else.
const Magic = "--tend-internal-spawner"

// sockFD is the spawner's end of the socket pair.
const sockFD = 3

// IsSpawner reports whether args (os.Args) are the spawner's.
func IsSpawner(args []string) bool {
	return len(args) == 2 && args[1] == Magic
}

// Serve is the spawner's main: it reads requests on descriptor 3 until
// tend closes its end (or dies: the parent-death signal is SIGKILL), starts
// each child as tend's child (CLONE_PARENT) and answers with its pid or
// the errno. It never waits for a child: they are not its children. It
// returns the exit status.
func Serve() int {
	var st unix.Stat_t
	if err := unix.Fstat(sockFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		os.Stderr.WriteString("tend: " + Magic + " is tend's own: descriptor 3 must be its socket\n")
		return 2
	}
	// Children must not get the socket: tend sees the spawner's death as
	// the end of the socket.
	unix.CloseOnExec(sockFD)
	// The spawner must never need a thread it did not start with: in a
	// pids cgroup that a service has filled, a thread the runtime cannot
	// make is a fatal error (its "fatal error: newosproc" lands in tend's
	// stderr). With one P, the runtime never starts a thread for a second
	// P's goroutines or collection workers, and with collection only at a
	// memory limit (it allocates a few hundred bytes per request) it
	// rarely collects at all.
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(32 << 20)
	buf := make([]byte, maxRequest)
	oob := make([]byte, unix.CmsgSpace(maxRights*4))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(sockFD, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return 0 // tend is gone or closed its end
		}
		fds := rights(oob[:oobn])
		reply := serveOne(buf[:n], fds, flags)
		for _, fd := range fds {
			unix.Close(fd)
		}
		for {
			err := unix.Sendmsg(sockFD, reply, nil, nil, unix.MSG_NOSIGNAL)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return 0
			}
			break
		}
	}
}

func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if f, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

func serveOne(msg []byte, fds []int, flags int) []byte {
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		return encodeReply(replyDeclined, 0, unix.EMSGSIZE)
	}
	q, err := decode(msg)
	if err != nil {
		return encodeReply(replyDeclined, 0, unix.EINVAL)
	}
	files := make([]uintptr, len(q.slots))
	for i, s := range q.slots {
		switch {
		case s == none:
			files[i] = ^uintptr(0) // closed in the child
		case int(s) < len(fds):
			files[i] = uintptr(fds[s])
		default:
			return encodeReply(replyDeclined, 0, unix.EBADF)
		}
	}
	sys := &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_PARENT,
		Setsid:     q.setsid,
		Setpgid:    q.setpgid,
		Pgid:       q.pgid,
		Credential: q.cred,
	}
	if q.cgroup != none {
		if int(q.cgroup) >= len(fds) {
			return encodeReply(replyDeclined, 0, unix.EBADF)
		}
		sys.UseCgroupFD, sys.CgroupFD = true, fds[q.cgroup]
	}
	attr := &syscall.ProcAttr{Dir: q.dir, Env: q.env, Files: files, Sys: sys}
	// On an exec failure ForkExec waits for the child, which is tend's:
	// that wait4 fails with ECHILD and tend's reaper collects it.
	pid, err := syscall.ForkExec(q.path, q.argv, attr)
	if err != nil {
		errno, ok := err.(syscall.Errno)
		if !ok {
			errno = unix.EINVAL
		}
		return encodeReply(replyFailed, 0, errno)
	}
	return encodeReply(replyStarted, uint32(pid), 0)
}
