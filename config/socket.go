package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Where the control socket is when the config does not set
// control_socket: one function, DefaultControlSocket, for tend and for
// tend ctl, so that both find the same path.

// RootControlSocket is the default control socket of a tend that runs as
// root.
const RootControlSocket = "/run/tend.sock"

// maxSocketPath: sun_path holds 108 bytes including the terminating NUL.
const maxSocketPath = 107

// SocketPlace is a default control socket, and how it was chosen.
type SocketPlace struct {
	Path string // the socket
	// Dir is the private directory that holds the socket when it is
	// /tmp/tend-UID/tend.sock: tend makes it (PrivateDir with create),
	// and both tend and tend ctl refuse it unless UID owns it. "" for the
	// other places.
	Dir   string
	UID   int      // the effective uid the place was chosen for
	Tried []string // the places passed over, each with why
}

// Choice says how the place was chosen, for messages: "the default for
// uid 1000: not /run/tend.sock (root's), not $XDG_RUNTIME_DIR (it is not
// set), so /tmp/tend-1000/tend.sock".
func (p SocketPlace) Choice() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the default for uid %d: ", p.UID)
	for _, t := range p.Tried {
		b.WriteString("not " + t + ", ")
	}
	if len(p.Tried) > 0 {
		b.WriteString("so ")
	}
	b.WriteString(p.Path)
	return b.String()
}

// DefaultControlSocket is where the control socket is when control_socket
// is not set, for the effective uid of this process and the environment
// that lookup reads (nil: os.LookupEnv):
//
//   - /run/tend.sock for root (euid 0);
//   - else $XDG_RUNTIME_DIR/tend.sock when XDG_RUNTIME_DIR is set to an
//     absolute path of a directory that the user owns and nobody else may
//     write (as pam_systemd makes /run/user/UID);
//   - else /tmp/tend-UID/tend.sock, in a directory of mode 0700 that tend
//     makes (see PrivateDir). /tmp and not $TMPDIR: tend ctl must find the
//     same path, and a HEALTHCHECK or `docker exec` may not share tend's
//     TMPDIR.
//
// It only chooses, and makes nothing.
func DefaultControlSocket(lookup func(string) (string, bool)) SocketPlace {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return defaultControlSocket(os.Geteuid(), lookup, os.Stat)
}

// defaultControlSocket is DefaultControlSocket for euid, with the
// environment in lookup and the file system behind stat.
func defaultControlSocket(euid int, lookup func(string) (string, bool), stat func(string) (fs.FileInfo, error)) SocketPlace {
	if euid == 0 {
		return SocketPlace{Path: RootControlSocket}
	}
	p := SocketPlace{UID: euid, Tried: []string{RootControlSocket + " (root's)"}}
	xdg, _ := lookup("XDG_RUNTIME_DIR")
	if xdg != "" {
		xdg = filepath.Clean(xdg)
	}
	why := ""
	switch sock := filepath.Join(xdg, "tend.sock"); {
	case xdg == "":
		why = "it is not set"
	case !filepath.IsAbs(xdg):
		why = fmt.Sprintf("%q is not an absolute path", xdg)
	case len(sock) > maxSocketPath:
		why = fmt.Sprintf("%s would be %d bytes, longer than a unix socket's %d", sock, len(sock), maxSocketPath)
	default:
		fi, err := stat(xdg)
		if err != nil {
			why = fmt.Sprintf("%s: %v", xdg, shortPathErr(err))
		} else if why = notPrivate(fi, euid); why != "" {
			why = xdg + " " + why
		} else {
			p.Path, p.Tried = sock, nil
			return p
		}
	}
	p.Tried = append(p.Tried, "$XDG_RUNTIME_DIR ("+why+")")
	p.Dir = fmt.Sprintf("/tmp/tend-%d", euid)
	p.Path = p.Dir + "/tend.sock"
	return p
}

// notPrivate says why fi is not a directory that only uid controls: a
// real directory (not a symbolic link), owned by uid, that nobody else may
// write. "" when it is one.
func notPrivate(fi fs.FileInfo, uid int) string {
	st, _ := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "is a symbolic link"
	case !fi.IsDir():
		return "is not a directory"
	case st == nil:
		return "has no owner that tend can read"
	case int(st.Uid) != uid:
		return fmt.Sprintf("is owned by uid %d, not by uid %d", st.Uid, uid)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Sprintf("may be written by others (mode %04o)", fi.Mode().Perm())
	}
	return ""
}

// PrivateDir checks dir, the directory of a default control socket in
// /tmp (SocketPlace.Dir), and with create makes it first, mode 0700. It
// must be a directory, not a symbolic link, owned by uid, that nobody else
// may write: anything else is refused, since another user who can write
// /tmp could have made it, to take tend's socket or to put there one that
// tend ctl would talk to as if it were tend. (/tmp's sticky bit keeps
// others from removing or renaming the directory once it is uid's.)
// Without create, a directory that does not exist is no error: there is
// no socket in it either.
func PrivateDir(dir string, uid int, create bool) error {
	if create {
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		if !create && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if why := notPrivate(fi, uid); why != "" {
		return fmt.Errorf("%s %s, so it is not used: another user may have made it to take the socket or to pose as tend; remove it", dir, why)
	}
	return nil
}

// shortPathErr drops the path that an *fs.PathError repeats.
func shortPathErr(err error) error {
	var p *fs.PathError
	if errors.As(err, &p) {
		return p.Err
	}
	return err
}
