package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
)

// An output file with rotation (output = PATH with output_max_size) is
// written by tend, not by the service: the service's stdout and stderr are
// one pipe, and a pump of the run copies it to the file, whole lines at a
// time, rotating the file before the next line would take it past the
// size. The pump does that itself, so a slow disk slows that service alone,
// as it does when the service writes the file itself; nothing else waits.

// rotationRetry is how long after a failed rotation tend goes on writing to
// the full file before it tries again. A var so that tests can shorten it.
var rotationRetry = 10 * time.Second

// fileChunk is a file pump's read buffer.
const fileChunk = 64 << 10

// longLine is the most of a line without its newline a file pump gathers:
// a longer line (or one longer than the size, if that is smaller) starts a
// file of its own and is written on in pieces as it comes.
const longLine = 1 << 20

// rotFile is one output file tend writes, shared by the runs of its
// service (an old run's last processes may still write while a new run
// has started); refs counts the pumps holding it. Its writes and
// rotations are made under mu, by the pumps.
type rotFile struct {
	sink *Sink
	path string
	refs int // under sink.filesMu

	mu       sync.Mutex
	service  string
	maxSize  int64
	backups  int
	f        *os.File
	size     int64
	midLine  bool            // the last write ended inside a long line
	reported map[string]bool // failures already told, by kind; cleared by a rotation that works
	retryAt  time.Time       // no rotation before this, after one failed

	// The file system, for tests to make it fail.
	rename func(from, to string) error
	now    func() time.Time
}

// backupName is the n-th rotated file: PATH.1 the newest.
func backupName(path string, n int) string { return path + "." + strconv.Itoa(n) }

// openRotating returns the output file at path for one run of service,
// opening it if no run holds it. It is called on the supervisor's
// goroutine, which opens the file just as it does one a service writes
// itself.
func (s *Sink) openRotating(service, path string, maxSize int64, backups int) (*rotFile, error) {
	s.filesMu.Lock()
	defer s.filesMu.Unlock()
	if rf := s.files[path]; rf != nil {
		rf.mu.Lock()
		rf.service, rf.maxSize, rf.backups = service, maxSize, backups
		rf.mu.Unlock()
		rf.refs++
		return rf, nil
	}
	f, err := openOutputFile(path)
	if err != nil {
		return nil, err
	}
	rf := &rotFile{sink: s, path: path, refs: 1, service: service, maxSize: maxSize, backups: backups, f: f,
		rename: os.Rename, now: time.Now}
	if st, err := f.Stat(); err == nil {
		rf.size = st.Size()
	}
	if s.files == nil {
		s.files = map[string]*rotFile{}
	}
	s.files[path] = rf
	return rf, nil
}

// release: a pump is done with the file; the last one closes it.
func (r *rotFile) release() {
	s := r.sink
	s.filesMu.Lock()
	r.refs--
	last := r.refs == 0
	if last && s.files[r.path] == r {
		delete(s.files, r.path)
	}
	s.filesMu.Unlock()
	if last {
		r.mu.Lock()
		r.f.Close()
		r.mu.Unlock()
	}
}

// reopenFile opens the output file at path again, if a run holds it open:
// after an external logrotate moved it, new lines go to a new file at
// path. It reports whether the file was open.
func (s *Sink) reopenFile(path string) (bool, error) {
	s.filesMu.Lock()
	rf := s.files[path]
	if rf != nil {
		rf.refs++ // not closed under our feet
	}
	s.filesMu.Unlock()
	if rf == nil {
		return false, nil
	}
	defer rf.release()
	rf.mu.Lock()
	defer rf.mu.Unlock()
	return true, rf.reopen()
}

func (r *rotFile) reopen() error {
	f, err := openOutputFile(r.path)
	if err != nil {
		return err
	}
	r.f.Close()
	r.f = f
	r.size = 0
	if st, err := f.Stat(); err == nil {
		r.size = st.Size()
	}
	return nil
}

// writeLines writes data, whole lines each ending in a newline, rotating
// the file before a line that would take it past maxSize. A line longer
// than maxSize goes whole into a file of its own.
func (r *rotFile) writeLines(data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.midLine { // the rest of a long line: it stays in its file
		i := bytes.IndexByte(data, '\n')
		r.write(data[:i+1])
		data = data[i+1:]
		r.midLine = false
	}
	for len(data) > 0 {
		room := r.maxSize - r.size
		if int64(len(data)) <= room {
			r.write(data)
			return
		}
		cut := -1
		if room > 0 {
			cut = bytes.LastIndexByte(data[:room], '\n')
		}
		if cut >= 0 { // the lines that fit
			r.write(data[:cut+1])
			data = data[cut+1:]
		}
		if r.size > 0 && !r.rotate() {
			r.write(data) // it cannot rotate: the file grows past the size
			return
		}
		if r.size == 0 && int64(bytes.IndexByte(data, '\n')+1) > r.maxSize {
			i := bytes.IndexByte(data, '\n') // a line longer than the size, alone
			r.write(data[:i+1])
			data = data[i+1:]
		}
	}
}

// writePiece writes the start of a long line that has no newline yet: it
// begins a new file, unless the current one is empty.
func (r *rotFile) writePiece(piece []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.midLine && r.size > 0 {
		r.rotate()
	}
	r.write(piece)
	r.midLine = true
}

func (r *rotFile) write(b []byte) {
	if len(b) == 0 {
		return
	}
	n, err := r.f.Write(b)
	r.size += int64(n)
	if err != nil {
		r.fail("write", fmt.Sprintf("cannot write its output file %s: %v; the lines are dropped until a write works", r.path, err))
	}
}

// rotate renames PATH.(N-1) to PATH.N, …, PATH to PATH.1 and opens a new
// PATH with the old one's owner and mode; with no backups it empties the
// file instead. When it fails, lines go on into the current file, which
// grows past the size, and it is tried again after rotationRetry.
func (r *rotFile) rotate() bool {
	now := r.now()
	if now.Before(r.retryAt) {
		return false
	}
	st, err := r.f.Stat()
	if err != nil {
		return r.failed(now, "stat", fmt.Sprintf("cannot rotate its output file %s: %v", r.path, err))
	}
	if cur, err := os.Lstat(r.path); err != nil || !os.SameFile(st, cur) {
		// Moved away by someone else (a logrotate without tend ctl
		// reopen): start a new file at the path; never rename theirs.
		if err := r.reopen(); err != nil {
			return r.failed(now, "open", fmt.Sprintf("cannot open its output file %s again, which was moved away: %v; %s", r.path, err, r.fix()))
		}
		return r.rotated()
	}
	if r.backups == 0 {
		if err := r.f.Truncate(0); err != nil {
			return r.failed(now, "truncate", fmt.Sprintf("cannot empty its output file %s (output_backups = 0): %v", r.path, err))
		}
		r.size = 0
		return r.rotated()
	}
	// Shift the backups up to the first missing one: the rest stay.
	top := 1
	for top < r.backups {
		if _, err := os.Lstat(backupName(r.path, top)); err != nil {
			break
		}
		top++
	}
	for n := top - 1; n >= 1; n-- {
		if err := r.rename(backupName(r.path, n), backupName(r.path, n+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return r.failed(now, "rename "+errnoOf(err), fmt.Sprintf("cannot rotate its output file %s: %v; %s", r.path, err, r.fix()))
		}
	}
	if err := r.rename(r.path, backupName(r.path, 1)); err != nil {
		return r.failed(now, "rename "+errnoOf(err), fmt.Sprintf("cannot rotate its output file %s: %v; %s", r.path, err, r.fix()))
	}
	f, err := createLike(r.path, st)
	if err != nil {
		// Put the full file back, so that PATH is what is written.
		back := r.rename(backupName(r.path, 1), r.path)
		where := r.path
		if back != nil {
			where = backupName(r.path, 1)
		}
		return r.failed(now, "create "+errnoOf(err), fmt.Sprintf("cannot create a new output file %s after rotating it: %v; output goes on into %s; %s", r.path, err, where, r.fix()))
	}
	r.f.Close()
	r.f, r.size = f, 0
	return r.rotated()
}

func (r *rotFile) fix() string {
	return fmt.Sprintf("tend must be able to rename and create files in %s (a writable directory on a writable file system); until then output goes on into the current file, past output_max_size, and tend tries again every %s", filepath.Dir(r.path), rotationRetry)
}

func (r *rotFile) rotated() bool {
	r.retryAt = time.Time{}
	r.reported = nil
	return true
}

func (r *rotFile) failed(now time.Time, kind, msg string) bool {
	r.retryAt = now.Add(rotationRetry)
	r.fail(kind, msg)
	return false
}

// fail tells a failure once per kind until a rotation works again.
func (r *rotFile) fail(kind, msg string) {
	if r.reported[kind] {
		return
	}
	if r.reported == nil {
		r.reported = map[string]bool{}
	}
	r.reported[kind] = true
	if report := r.sink.onFileError; report != nil {
		report(r.service, msg)
	}
}

func errnoOf(err error) string {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e.Error()
	}
	return "other"
}

// createLike creates path as output files are opened (O_NOFOLLOW) with
// the owner and mode of the file it replaces. Should something have made
// a file at path meanwhile, that file is appended to as it is.
func createLike(path string, old os.FileInfo) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	if errors.Is(err, os.ErrExist) {
		return openOutputFile(path)
	}
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, err
	}
	if sys, ok := old.Sys().(*syscall.Stat_t); ok {
		_ = f.Chown(int(sys.Uid), int(sys.Gid))
	}
	_ = f.Chmod(old.Mode().Perm())
	return f, nil
}

// pumpFile copies r, a run's stdout and stderr, to its output file until
// EOF, line by line, then closes r and lets the file go. A last line
// without a newline gets one, so that the next run's first line starts a
// line of its own.
func (s *Sink) pumpFile(service string, r *os.File, rf *rotFile) {
	s.wg.Add(1)
	s.pumps.Add(1)
	guard.Go("output file of "+service, func() {
		defer s.wg.Done()
		defer s.pumps.Add(-1)
		defer rf.release()
		defer r.Close()
		buf := make([]byte, fileChunk)
		var partial []byte
		limit := int(min(rf.maxSize, longLine))
		for {
			n, err := r.Read(buf)
			data := buf[:n]
			if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
				if len(partial) > 0 {
					partial = append(partial, data[:i+1]...)
					rf.writeLines(partial)
					partial = partial[:0]
				} else {
					rf.writeLines(data[:i+1])
				}
				data = data[i+1:]
			}
			partial = append(partial, data...)
			if len(partial) >= limit {
				rf.writePiece(partial)
				partial = partial[:0]
			}
			if len(partial) == 0 && cap(partial) > 2*fileChunk {
				partial = nil
			}
			if err != nil { // EOF: every process of the run has closed the pipe
				if len(partial) > 0 || rf.isMidLine() {
					rf.writeLines(append(partial, '\n'))
				}
				return
			}
		}
	})
}

func (r *rotFile) isMidLine() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.midLine
}
