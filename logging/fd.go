package logging

import (
	"golang.org/x/sys/unix"
)

// FD writes to a descriptor with plain write(2) calls. Unlike os.Stderr it
// does not turn an EPIPE on descriptor 1 or 2 into a second SIGPIPE raised
// by the runtime, and it keeps the descriptor's blocking mode, which the
// children share (O_NONBLOCK is a property of the open file, not of tend's
// descriptor).
type FD int

// Write writes all of p, waiting (in poll(2), never spinning) while a
// non-blocking descriptor is full. It returns the first error that is not
// EINTR or EAGAIN: EPIPE when the reader is gone, EBADF when the
// descriptor is closed.
func (fd FD) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := unix.Write(int(fd), p[done:])
		if n > 0 {
			done += n
		}
		switch err {
		case nil:
			if n == 0 {
				return done, unix.EIO // a zero-length write: no progress is possible
			}
		case unix.EINTR:
		case unix.EAGAIN:
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(pfd, -1); err != nil && err != unix.EINTR {
				return done, err
			}
		default:
			return done, err
		}
	}
	return done, nil
}
