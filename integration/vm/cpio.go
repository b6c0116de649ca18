// Package vm builds what the VM integration tests boot: an initramfs in the
// kernel's cpio "newc" format (see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst), written
// without the cpio tool and without root, device nodes included.
package vm

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"
)

// Initramfs writes a newc archive. Parent directories are added on demand;
// Close writes the trailer.
type Initramfs struct {
	w    io.Writer
	ino  uint32
	seen map[string]bool
	err  error
}

// New starts an archive on w.
func New(w io.Writer) *Initramfs {
	return &Initramfs{w: w, ino: 1, seen: map[string]bool{".": true, "/": true, "": true}}
}

const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
	modeChr  = 0o020000
)

// Dir adds a directory.
func (a *Initramfs) Dir(name string, perm os.FileMode) {
	name = clean(name)
	if a.seen[name] {
		return
	}
	a.parents(name)
	a.seen[name] = true
	a.entry(name, modeDir|uint32(perm.Perm())|sticky(perm), 2, 0, 0, nil)
}

// File adds a regular file with data.
func (a *Initramfs) File(name string, perm os.FileMode, data []byte) {
	name = clean(name)
	a.parents(name)
	a.seen[name] = true
	a.entry(name, modeFile|uint32(perm.Perm()), 1, 0, 0, data)
}

// CopyFile adds the host file src as name, with its permissions.
func (a *Initramfs) CopyFile(name, src string) {
	data, err := os.ReadFile(src)
	if err != nil {
		a.fail(err)
		return
	}
	st, err := os.Stat(src)
	if err != nil {
		a.fail(err)
		return
	}
	a.File(name, st.Mode().Perm(), data)
}

// Symlink adds name pointing to target.
func (a *Initramfs) Symlink(name, target string) {
	name = clean(name)
	a.parents(name)
	a.seen[name] = true
	a.entry(name, modeLink|0o777, 1, 0, 0, []byte(target))
}

// CharDev adds a character device node.
func (a *Initramfs) CharDev(name string, perm os.FileMode, major, minor uint32) {
	name = clean(name)
	a.parents(name)
	a.seen[name] = true
	a.entry(name, modeChr|uint32(perm.Perm()), 1, major, minor, nil)
}

// Close writes the trailer and reports the first error.
func (a *Initramfs) Close() error {
	a.entry("TRAILER!!!", 0, 1, 0, 0, nil)
	return a.err
}

func (a *Initramfs) parents(name string) {
	if dir := path.Dir(name); !a.seen[dir] {
		a.Dir(dir, 0o755)
	}
}

func (a *Initramfs) entry(name string, mode, nlink, rmajor, rminor uint32, data []byte) {
	if a.err != nil {
		return
	}
	ino := a.ino
	a.ino++
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize (with the NUL), check.
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	buf := make([]byte, 0, len(hdr)+len(name)+8+len(data)+4)
	buf = append(buf, hdr...)
	buf = append(buf, name...)
	buf = append(buf, 0)
	buf = pad(buf)
	buf = append(buf, data...)
	buf = pad(buf)
	if _, err := a.w.Write(buf); err != nil {
		a.fail(err)
	}
}

// pad aligns to 4 bytes; header and name start at a multiple of 4 since
// every entry ends aligned.
func pad(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func (a *Initramfs) fail(err error) {
	if a.err == nil {
		a.err = err
	}
}

func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func sticky(m os.FileMode) uint32 {
	if m&os.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}
