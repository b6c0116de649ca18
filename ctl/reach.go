package ctl

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/tend-init/tend/config"
)

// dialError is a connection to the socket that could not be made: it says
// nothing of tend, only of the path, so it is explained with what to change.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// dial connects to tend's socket. A default socket in /tmp is used only
// in a directory of this user's own (config.PrivateDir): one that another
// user made could hold a socket that poses as tend.
func (c *client) dial() (net.Conn, error) {
	if p := c.where.place; p != nil && p.Dir != "" {
		if err := config.PrivateDir(p.Dir, p.UID, false); err != nil {
			return nil, &dirError{err}
		}
	}
	conn, err := net.DialTimeout("unix", c.socket, 5*time.Second)
	if err != nil {
		return nil, &dialError{err}
	}
	return conn, nil
}

// dirError is a default socket's directory that tend ctl will not use.
type dirError struct{ err error }

func (e *dirError) Error() string { return e.err.Error() }
func (e *dirError) Unwrap() error { return e.err }

// unreachable explains on stderr why tend could not be asked.
func (c *client) unreachable(err error) {
	var d *dialError
	var dir *dirError
	if errors.As(err, &dir) {
		fmt.Fprintf(c.errw, "tend ctl: will not use %s: %v, or pass --socket with the path tend listens on\n", c.socket, dir.err)
		return
	}
	if !errors.As(err, &d) {
		fmt.Fprintf(c.errw, "tend ctl: no answer from tend at %s: %v\n", c.socket, err)
		return
	}
	msg := c.why(d.err)
	if note := c.configNote(); note != "" {
		msg += "; " + note
	}
	fmt.Fprintf(c.errw, "tend ctl: cannot reach tend at %s: %s\n", c.socket, msg)
}

// why says what went wrong in a connection to the socket, and what the
// user may change.
func (c *client) why(err error) string {
	var errno syscall.Errno
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		return "no such file (" + c.whereHint() + ")"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return "permission denied (only root and the user tend runs as may use its socket, mode 0600: run tend ctl as one of them)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (the file is there but no tend listens on it: tend has ended, or this is not its socket)"
	case errors.Is(err, syscall.EAGAIN):
		return "tend is not taking new connections as fast as they come; try again"
	case errors.Is(err, syscall.EINVAL) && len(c.socket) >= 108:
		return "the path is longer than a unix socket's 107 bytes: set a shorter control_socket"
	case errors.As(err, &timeout) && timeout.Timeout():
		return "tend did not take the connection within 5s"
	case errors.As(err, &errno):
		return errno.Error()
	}
	return err.Error()
}

// whereHint is what to check when there is no socket at the path, by
// where the path came from.
func (c *client) whereHint() string {
	switch w := c.where; {
	case w.flag:
		return "is tend running, with this control_socket in its config?"
	case w.fromConfig:
		return fmt.Sprintf("is tend running? control_socket in %s (TEND_CONFIG) says this path", w.config)
	}
	hint := "is tend running with its control socket elsewhere? set control_socket in the config and pass --socket or TEND_CONFIG"
	if p := c.where.place; p != nil {
		hint = fmt.Sprintf("is tend running, as uid %d and without control_socket? this is %s; a tend that runs as another user", p.UID, p.Choice())
		if p.UID == 0 {
			hint += " has its socket at /tmp/tend-UID/tend.sock or in its $XDG_RUNTIME_DIR"
		} else {
			hint += ", or with another XDG_RUNTIME_DIR, has its socket elsewhere"
		}
		hint += ": pass --socket, or TEND_CONFIG with control_socket set"
	}
	return hint
}

// configNote says why the default path was tried although TEND_CONFIG is
// set.
func (c *client) configNote() string {
	switch w := c.where; {
	case w.off:
		return fmt.Sprintf("%s (TEND_CONFIG) has control_socket = \"\", which turns the control API off, so this is the default path", w.config)
	case w.err != nil:
		return fmt.Sprintf("TEND_CONFIG names %s, which tend ctl could not read (%v), so this is the default path", w.config, shortErr(w.err))
	}
	return ""
}

// shortErr drops the path an *os.PathError repeats.
func shortErr(err error) error {
	var p *os.PathError
	if errors.As(err, &p) {
		return p.Err
	}
	return err
}
