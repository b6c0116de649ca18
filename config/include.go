package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"
)

// The include tree (issue 19). The main file, and any file it includes,
// may have a top-level
//
//	include = ["/etc/tend.d/*.toml", "local.toml"]
//
// Each entry is a path or a path/filepath.Match glob, relative to the
// directory of the file that names it. Files are read depth first: a file,
// then each entry of its include in the order listed (a glob's matches in
// lexical order), each followed by what it includes in turn. Only the main
// file sets tend's own settings (log_level, control_socket, ...); every
// file may add services and override those of the files read before it
// (merge.go).

// Bounds of an include tree.
const (
	// MaxIncludeDepth is how deeply includes may nest: the main file
	// includes files at depth 1, they include files at depth 2, and so on.
	MaxIncludeDepth = 8
	// MaxFiles is how many files an include tree may have, the main file
	// with them: a directory of one service per file holds 9,999 services.
	MaxFiles = 10000
	// MaxTotalSize is how many bytes all the files of a tree may have
	// together: as many as one file may (MaxSize), so that splitting a
	// config into files never raises what reading it can cost.
	MaxTotalSize = MaxSize
)

// source is one file of a config's include tree, as one load read it.
type source struct {
	path   string
	data   []byte
	sum    contentSum
	root   map[string]any // decoded; nil when it could not be
	index  int            // in the order the files were read; the main file is 0
	depth  int
	parent *source // the file that included it; nil for the main file
	id     fileID

	// For the next load (loader.go): what the file was when it was read,
	// and what the last load made of it when its content is the same.
	stat    fileStat
	trusted bool // the stat can tell a change
	memo    *fileMemo
	entries []includeEntry
	frags   []fragment // src not set
}

// fileID is a file's identity, whatever name reached it.
type fileID struct{ dev, ino uint64 }

// fileStat is what the kernel says of a file: if none of it changed, nor
// did the file (but see racyWindow).
type fileStat struct {
	dev, ino     uint64
	mode         uint32
	size         int64
	mtime, ctime int64 // ns
}

func statOf(st *unix.Stat_t) fileStat {
	return fileStat{uint64(st.Dev), st.Ino, st.Mode, st.Size, st.Mtim.Nano(), st.Ctim.Nano()}
}

func (s fileStat) id() fileID { return fileID{s.dev, s.ino} }

// chain is the include chain from the main file to src, for messages.
func (src *source) chain(next string) string {
	var names []string
	for s := src; s != nil; s = s.parent {
		names = append(names, s.path)
	}
	slices.Reverse(names)
	if next != "" {
		names = append(names, next)
	}
	return strings.Join(names, " → ")
}

// globals are the top-level keys only the main file may set, with how they
// are read (config.go).
var globals = []string{"log_level", "log_format", "log_buffer", "control_socket", "metrics_listen",
	"hostname", "shutdown_timeout", "ready_timeout", "cgroups"}

// includeEntry is one entry of a file's include, resolved.
type includeEntry struct {
	written string // as in the file, after ${VAR} expansion
	path    string // joined to the including file's directory
	glob    bool
}

// includes reads the include key of a file's top-level table t.
func (t *table) includes() []includeEntry {
	v, ok := t.get("include")
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		t.typeError("include", "an array of paths or globs, such as [\"/etc/tend.d/*.toml\"]", v)
		return nil
	}
	names, ok := t.stringArray("include", arr)
	if !ok {
		return nil
	}
	out := make([]includeEntry, 0, len(names))
	for _, n := range names {
		if n == "" {
			t.errorf("include", "has an empty path; remove it")
			continue
		}
		e := includeEntry{written: n, path: n, glob: hasMeta(n)}
		if !filepath.IsAbs(n) {
			e.path = filepath.Join(filepath.Dir(t.src.path), n)
		}
		e.path = filepath.Clean(e.path)
		if e.glob {
			if _, err := filepath.Match(e.path, ""); err != nil {
				t.errorf("include", "%q is not a valid glob (path/filepath.Match syntax: * ? [a-z] and \\ to quote): %v", n, err)
				continue
			}
		}
		out = append(out, e)
	}
	return out
}

// hasMeta is path/filepath's test for a glob: a path without these is a
// file that must exist.
func hasMeta(path string) bool { return strings.ContainsAny(path, `*?[\`) }

// tree reads the files of an include tree, each once.
type tree struct {
	p        *parser
	l        *Loader   // for the content of the last load; never nil
	start    time.Time // when the load began, before any file was read
	sources  []*source // in the order read
	byID     map[fileID]*source
	total    int  // bytes read
	full     bool // MaxFiles or MaxTotalSize reached: nothing more is read
	broken   bool // a file could not be read or decoded: the tree is incomplete
	frags    []*fragment
	noLimits bool   // for the next file added: no size or nesting checks
	scratch  []byte // what files are read into
}

// add takes a file read (data, identity) into the tree: from the last load
// if its content is the same, else decoded. It reports problems of the file
// itself; nil root means it could not be decoded.
func (tr *tree) add(path string, data []byte, st fileStat, parent *source) *source {
	src := tr.place(path, st, parent)
	tr.total += len(data)
	src.sum = tr.l.sum(data)
	// ctime is set by the kernel, to its clock, at every change of the
	// file; a change in the same tick as this read may leave it as it is
	// (as git's "racy" index entries), so only a file older than the
	// window is judged by its stat next time.
	src.trusted = st.ctime < tr.start.Add(-racyWindow).UnixNano()
	if m := tr.l.last.files[path]; m != nil && m.sum == src.sum {
		src.data, src.root, src.memo = m.data, m.root, m
		return src
	}
	src.data = slices.Clone(data)
	tr.l.decodes++
	if !tr.noLimits {
		if _, err := checkLimits(path, src.data, false); err != nil {
			tr.fail(src, err)
			return src
		}
	}
	root, err := decode(src.data)
	if err != nil {
		tr.fail(src, syntaxError(path, err))
		return src
	}
	if root == nil {
		root = map[string]any{}
	}
	src.root = root
	return src
}

// racyWindow is how long after its last change a file must have been read
// for its stat to tell whether it changed since: the kernel's timestamps
// move in ticks of its coarse clock (milliseconds), some file systems'
// in seconds (2 s on FAT).
const racyWindow = 2 * time.Second

// place puts a new source in the tree.
func (tr *tree) place(path string, st fileStat, parent *source) *source {
	src := &source{path: path, index: len(tr.sources), parent: parent, id: st.id(), stat: st}
	if parent != nil {
		src.depth = parent.depth + 1
	}
	tr.sources = append(tr.sources, src)
	tr.byID[src.id] = src
	return src
}

// unchanged takes the file at path from the last load without reading it,
// if its stat says it did not change since (see racyWindow): nil if not.
func (tr *tree) unchanged(path string, parent *source) (*source, error) {
	m := tr.l.last.files[path]
	if m == nil || !m.trusted {
		return nil, nil
	}
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil || statOf(&st) != m.stat {
		return nil, nil
	}
	if tr.total+len(m.data) > MaxTotalSize {
		return nil, errTooMuch
	}
	if seen := tr.byID[m.stat.id()]; seen != nil {
		return nil, nil // read it as any other, to say what is wrong
	}
	src := tr.place(path, m.stat, parent)
	tr.total += len(m.data)
	src.sum, src.data, src.root, src.memo, src.trusted = m.sum, m.data, m.root, m, true
	return src, nil
}

// fail records a file that could not be decoded: its problems (*Errors),
// and that the tree is incomplete.
func (tr *tree) fail(src *source, err error) {
	tr.broken = true
	var errs *Errors
	if errors.As(err, &errs) {
		for _, e := range errs.List {
			tr.p.lined(src, e.Line, e.Key, e.Msg)
		}
		return
	}
	tr.p.lined(src, 0, "", err.Error())
}

// visit reads one decoded file: its services, its settings (the main file)
// or that it has none (the others), then the files it includes, depth
// first. cfg gets the main file's settings. An included file whose content
// the last load had already is not read again: what it made of it is the
// same.
func (tr *tree) visit(src *source, cfg *Config) {
	if src.root == nil {
		return
	}
	if m := src.memo; m != nil && src.depth > 0 && m.included {
		src.entries, src.frags = m.entries, m.frags
	} else {
		t := &table{p: tr.p, src: src, m: src.root}
		before := len(tr.p.errs)
		src.entries = t.includes()
		if len(tr.p.errs) > before {
			tr.broken = true // an entry that cannot be read is files missing
		}
		for _, f := range t.fragments() {
			src.frags = append(src.frags, *f)
		}
		if src.depth == 0 {
			tr.p.globals(t, cfg)
		} else {
			for _, k := range globals {
				if t.has(k) {
					t.errorf(k, "is a setting of tend itself, which only the main file (%s) sets: move it there", tr.p.main.path)
				}
			}
		}
		t.done()
	}
	for i := range src.frags {
		f := src.frags[i]
		f.src = src
		tr.frags = append(tr.frags, &f)
	}
	for _, e := range src.entries {
		tr.include(src, e)
	}
}

// include reads the files of one include entry of src, and visits them.
func (tr *tree) include(src *source, e includeEntry) {
	at := toml.Key{"include"}
	say := func(format string, args ...any) {
		tr.p.errorOn(src, at, at, format, args...)
	}
	if tr.full {
		return
	}
	if tr.p.opts.noIncludes {
		tr.broken = true
		say("%q: not read: includes are off", e.written)
		return
	}
	if src.depth+1 > MaxIncludeDepth {
		tr.broken = true
		say("%q: includes nest more than %d deep (%s): flatten the tree", e.written, MaxIncludeDepth, src.chain(e.path))
		return
	}
	paths := []string{e.path}
	if e.glob {
		var err error
		if paths, err = filepath.Glob(e.path); err != nil {
			say("%q: %v", e.written, err) // checked by includes; kept for safety
			return
		}
		slices.Sort(paths) // lexical, across directories too
	}
	for _, path := range paths {
		if len(tr.sources) >= MaxFiles {
			tr.full, tr.broken = true, true
			say("%q: the include tree has more than %d files; tend reads at most %d: merge some of them", e.written, MaxFiles, MaxFiles)
			return
		}
		child, err := tr.unchanged(path, src)
		if child == nil && err == nil {
			var data []byte
			var st fileStat
			data, st, err = readIncluded(path, tr.scratch, MaxTotalSize-tr.total)
			tr.scratch = data[:0]
			tr.l.reads++
			if err == nil {
				if seen := tr.byID[st.id()]; seen != nil {
					// Not broken: what the file has is read already.
					if onChain(src, seen) {
						say("%q: include cycle: %s", e.written, src.chain(path))
					} else {
						say("%q: %s is read already (as %s, included from %s); a file is read once: remove one of the two includes", e.written, path, seen.path, seen.parent.path)
					}
					continue
				}
				child = tr.add(path, data, st, src)
			}
		}
		switch {
		case err == nil:
			tr.visit(child, nil)
		case errors.Is(err, errDirectory) && e.glob:
			continue // a glob passes over directories
		case errors.Is(err, fs.ErrNotExist) && e.glob:
			continue // gone since the glob saw it
		case errors.Is(err, fs.ErrNotExist):
			tr.broken = true
			say("%q (%s) does not exist; an entry without * ? [ or \\ names one file, which must be there (use a glob for files that may be missing)", e.written, path)
		case errors.Is(err, errTooMuch):
			tr.full, tr.broken = true, true
			say("%q: %s: the include tree has more than %d bytes in all; tend reads at most %d (%d MiB): make it smaller", e.written, path, MaxTotalSize, MaxTotalSize, MaxTotalSize>>20)
			return
		default:
			tr.broken = true
			say("%q: %v", e.written, err)
		}
	}
}

// onChain reports whether s is src or one of the files that included it.
func onChain(src, s *source) bool {
	for ; src != nil; src = src.parent {
		if src == s {
			return true
		}
	}
	return false
}

var (
	errDirectory = errors.New("is a directory")
	errTooMuch   = errors.New("over the byte budget")
)

// readIncluded reads the included file at path into buf (which it may
// grow, and returns): a regular file only (a FIFO, device or socket is
// refused, and a directory is errDirectory), opened non-blocking so that
// nothing can hold the read up, of at most MaxSize bytes and at most
// budget (errTooMuch past that).
func readIncluded(path string, buf []byte, budget int) ([]byte, fileStat, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return buf, fileStat{}, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return buf, fileStat{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	fst := statOf(&st)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFDIR:
		return buf, fst, fmt.Errorf("%s %w", path, errDirectory)
	default:
		return buf, fst, fmt.Errorf("%s is %s, not a regular file: tend includes regular files only", path, fileKind(st.Mode))
	}
	if st.Size > MaxSize {
		return buf, fst, fmt.Errorf("%s is %d bytes; tend reads config files of at most %d bytes (%d MiB): make it smaller", path, st.Size, MaxSize, MaxSize>>20)
	}
	limit := min(MaxSize, budget)
	// One byte more than the file says it has, to see its end (or that it
	// grew) in one read; files in /proc say they have none.
	want := min(max(int(st.Size)+1, 512), limit+1)
	if cap(buf) < want {
		buf = make([]byte, want)
	}
	buf = buf[:cap(buf)]
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf, make([]byte, min(len(buf), limit+1-n))...)
			buf = buf[:cap(buf)]
		}
		r, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return buf, fst, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if r == 0 {
			return buf[:n], fst, nil
		}
		if n += r; n > limit {
			if limit == MaxSize {
				return buf, fst, fmt.Errorf("%s has more than %d bytes; tend reads config files of at most %d bytes (%d MiB): make it smaller", path, MaxSize, MaxSize, MaxSize>>20)
			}
			return buf, fst, errTooMuch
		}
		if int64(n) == st.Size {
			return buf[:n], fst, nil // all the file said it has: no read for the end
		}
	}
}

// sortedKeys is the keys of m in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
