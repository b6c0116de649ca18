package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Environment files (env_file): systemd's EnvironmentFile= syntax, read by
// tend itself at load (to report errors early) and again at every start
// of a service (so that a changed file applies on the next start).
// docs/configuration.md#env_file says exactly what is accepted.

// EnvFile is one entry of an env_file list.
type EnvFile struct {
	Path     string // absolute: a relative path is taken from the config file's directory
	Optional bool   // written with a leading "-": a missing file is skipped silently
}

// Bounds of env files (docs/config-limits.md). tend reads them on the
// start path of a service, as PID 1: each read is bounded, and never waits.
const (
	// MaxEnvFileSize is the largest env file tend reads: far more than
	// any hand-written one, and a bound on what each start reads.
	MaxEnvFileSize = 1 << 20
	// MaxEnvFileVars is how many assignments one env file may hold.
	MaxEnvFileVars = 4096
	// MaxEnvFiles is how many paths one env_file list may name.
	MaxEnvFiles = 32
	// maxEnvString is the longest "NAME=value" the kernel passes to a
	// program: MAX_ARG_STRLEN (32 pages of 4 KiB) less the closing NUL.
	// execve refuses a longer one with E2BIG.
	maxEnvString = 32*4096 - 1
)

// EnvVar is one assignment of an env file.
type EnvVar struct {
	Name, Value string
	Line        int // where the assignment begins
}

// EnvFileError is a problem with the contents of an env file, or with what
// the path names (not a regular file, too large).
type EnvFileError struct {
	File string
	Line int // 1-based; 0 when it is about the whole file
	Msg  string
}

func (e *EnvFileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ReadEnvFile reads and parses the env file at path. A file that does not
// exist gives an error that errors.Is(err, fs.ErrNotExist) recognises.
func ReadEnvFile(path string) ([]EnvVar, error) {
	data, err := readEnvFile(path)
	if err != nil {
		return nil, err
	}
	return ParseEnvFile(path, data)
}

// ReadEnvFiles reads files in order, later ones over earlier ones, and
// returns the variables they set. An optional file that does not exist is
// skipped; any other problem is returned, naming the file (and the line).
func ReadEnvFiles(files []EnvFile) (map[string]string, error) {
	vars := make(map[string]string)
	for _, f := range files {
		list, err := ReadEnvFile(f.Path)
		if err != nil {
			if f.Optional && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, err
		}
		for _, v := range list {
			vars[v.Name] = v.Value
		}
	}
	return vars, nil
}

// readEnvFile reads the file at path, which must be a regular file of at
// most MaxEnvFileSize bytes. It is opened with O_NONBLOCK so that a FIFO
// (or a device) at the path cannot make tend wait in open or read: it is
// refused after fstat. Symbolic links are followed: the path is the
// administrator's, named in the config (see docs/configuration.md).
func readEnvFile(path string) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if kind := fileKind(st.Mode); kind != "" {
		return nil, &EnvFileError{File: path, Msg: "is " + kind + ", not a regular file: tend reads environment variables only from a plain file"}
	}
	if st.Size > MaxEnvFileSize {
		return nil, envTooBig(path, strconv.FormatInt(st.Size, 10)+" bytes")
	}
	// One byte more than the limit, to see a file that grew past it; a
	// file in /proc says it has 0 bytes and is read all the same.
	buf := make([]byte, 0, min(st.Size, MaxEnvFileSize)+1)
	for {
		if len(buf) == cap(buf) {
			if len(buf) > MaxEnvFileSize {
				return nil, envTooBig(path, "more than "+strconv.Itoa(MaxEnvFileSize)+" bytes")
			}
			buf = slices.Grow(buf, min(max(len(buf), 512), MaxEnvFileSize+1-len(buf)))
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			// Not an errno: this is not tend running short of anything.
			return nil, &EnvFileError{File: path, Msg: "reading it would wait for data: tend reads environment variables only from a plain file"}
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			if len(buf) > MaxEnvFileSize {
				return nil, envTooBig(path, "more than "+strconv.Itoa(MaxEnvFileSize)+" bytes")
			}
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// fileKind names what a file that is not a regular one is, for errors
// (env files and included files); "" for a regular file.
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return ""
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	}
	return "not a plain file"
}

func envTooBig(path, size string) error {
	return &EnvFileError{File: path, Msg: fmt.Sprintf("the file is %s; tend reads env files of at most %d bytes (%d MiB)", size, MaxEnvFileSize, MaxEnvFileSize>>20)}
}

// ParseEnvFile parses the contents of an env file; path names it in errors.
// The first problem ends the parse: a file is used whole or not at all.
func ParseEnvFile(path string, data []byte) ([]EnvVar, error) {
	if bom := utf8BOM(data); bom != nil {
		data = data[len(bom):]
	}
	if err := checkEnvText(path, data); err != nil {
		return nil, err
	}
	ep := envParser{path: path, data: data, line: 1}
	return ep.parse()
}

// checkEnvText refuses a NUL byte and bytes that are not UTF-8, naming the
// line.
func checkEnvText(path string, data []byte) error {
	line := 1
	for len(data) > 0 {
		end := len(data)
		if i := slices.Index(data, '\n'); i >= 0 {
			end = i
		}
		l := data[:end]
		if i := slices.Index(l, 0); i >= 0 {
			return &EnvFileError{File: path, Line: line, Msg: fmt.Sprintf("has a NUL byte (\\u0000) at column %d: the kernel ends every environment variable at a NUL; remove it", utf8.RuneCount(l[:i])+1)}
		}
		for i := 0; i < len(l); {
			r, n := utf8.DecodeRune(l[i:])
			if r == utf8.RuneError && n == 1 {
				return &EnvFileError{File: path, Line: line, Msg: fmt.Sprintf("is not UTF-8 (byte %#02x at column %d): an env file must be UTF-8 text", l[i], utf8.RuneCount(l[:i])+1)}
			}
			i += n
		}
		if end == len(data) {
			break
		}
		data = data[end+1:]
		line++
	}
	return nil
}

type envParser struct {
	path string
	data []byte
	i    int
	line int
	vars []EnvVar
}

func (p *envParser) errorf(line int, format string, args ...any) error {
	return &EnvFileError{File: p.path, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *envParser) peek() (byte, bool) {
	if p.i < len(p.data) {
		return p.data[p.i], true
	}
	return 0, false
}

// atNewline: data[i] ends a line: "\n", or the "\r" of "\r\n".
func (p *envParser) atNewline() bool {
	if p.i >= len(p.data) {
		return false
	}
	c := p.data[p.i]
	return c == '\n' || c == '\r' && p.i+1 < len(p.data) && p.data[p.i+1] == '\n'
}

// newline steps over the line end at i.
func (p *envParser) newline() {
	if p.data[p.i] == '\r' {
		p.i++
	}
	p.i++
	p.line++
}

func isEnvSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

func (p *envParser) skipSpace() {
	for p.i < len(p.data) && isEnvSpace(p.data[p.i]) && !p.atNewline() {
		p.i++
	}
}

func (p *envParser) parse() ([]EnvVar, error) {
	for {
		p.skipSpace()
		c, ok := p.peek()
		switch {
		case !ok:
			return p.vars, nil
		case p.atNewline():
			p.newline()
			continue
		case c == '#' || c == ';':
			for p.i < len(p.data) && p.data[p.i] != '\n' {
				p.i++
			}
			continue
		}
		if err := p.assignment(); err != nil {
			return nil, err
		}
	}
}

// assignment reads NAME=value, from the name to the end of the value's line.
func (p *envParser) assignment() error {
	line := p.line
	start := p.i
	for p.i < len(p.data) && p.data[p.i] != '=' && p.data[p.i] != '\n' {
		p.i++
	}
	key := strings.TrimRight(string(p.data[start:p.i]), " \t\r")
	if p.i == len(p.data) || p.data[p.i] != '=' {
		return p.errorf(line, "%s has no \"=\": each line is NAME=value, a comment (# or ;) or blank", quoteShort(key))
	}
	p.i++ // the "="
	if rest, ok := strings.CutPrefix(key, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		key = strings.TrimLeft(rest, " \t")
	}
	if msg := badVarName(key); msg != "" {
		return p.errorf(line, "%s", msg)
	}
	value, err := p.value(line)
	if err != nil {
		return err
	}
	if n := len(key) + 1 + len(value); n > maxEnvString {
		return p.errorf(line, "%s is %d bytes long as NAME=value; the kernel passes a program no environment variable longer than %d bytes (128 KiB)", quoteShort(key), n, maxEnvString)
	}
	if len(p.vars) == MaxEnvFileVars {
		return p.errorf(line, "one assignment too many: tend reads at most %d from one env file", MaxEnvFileVars)
	}
	p.vars = append(p.vars, EnvVar{Name: key, Value: value, Line: line})
	return nil
}

// badVarName says what is wrong with an env file's variable name: it must
// be [A-Za-z_][A-Za-z0-9_]*, as a shell's, and as systemd asks too.
func badVarName(k string) string {
	if k == "" {
		return "the line begins with \"=\": give the variable a name, NAME=value"
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return fmt.Sprintf("%s is not a valid variable name: use letters, digits and '_', not starting with a digit", quoteShort(k))
	}
	return ""
}

// quoteShort quotes s for a message, cut to 64 bytes.
func quoteShort(s string) string {
	const most = 64
	if len(s) <= most {
		return strconv.Quote(s)
	}
	cut := most
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// value reads what follows the "=" of an assignment that began on line.
func (p *envParser) value(line int) (string, error) {
	p.skipSpace()
	c, ok := p.peek()
	switch {
	case !ok || p.atNewline():
		return "", nil
	case c == '\'':
		return p.quoted('\'', line)
	case c == '"':
		return p.quoted('"', line)
	}
	// Unquoted: to the end of the line. A backslash keeps the byte after
	// it (and ends nothing); before a newline it joins the next line.
	var b []byte
	keep := 0 // length of b without trailing blanks
	for p.i < len(p.data) && !p.atNewline() {
		c := p.data[p.i]
		p.i++
		if c != '\\' {
			b = append(b, c)
			if !isEnvSpace(c) {
				keep = len(b)
			}
			continue
		}
		switch {
		case p.i == len(p.data):
		case p.atNewline():
			p.newline()
		default:
			b = append(b, p.data[p.i])
			p.i++
			keep = len(b) // an escaped blank is kept
		}
	}
	return string(b[:keep]), nil
}

// quoted reads a value in quotes q, which may span lines. In single
// quotes every byte is itself; in double quotes a backslash before one of
// " \ ` $ stands for that byte, before a newline joins the lines, and
// before anything else is kept with it. After the closing quote only
// blanks may follow on its line.
func (p *envParser) quoted(q byte, line int) (string, error) {
	open := p.line
	p.i++
	var b []byte
	for {
		if p.i == len(p.data) {
			what := "single"
			if q == '"' {
				what = "double"
			}
			return "", p.errorf(open, "the %s quote opened here is never closed", what)
		}
		c := p.data[p.i]
		switch {
		case c == q:
			p.i++
			p.skipSpace()
			if p.i < len(p.data) && !p.atNewline() {
				return "", p.errorf(p.line, "%s after the closing quote: only blanks may follow it on its line (tend, like systemd, has no comments after a value)", quoteShort(p.rest()))
			}
			return string(b), nil
		case p.atNewline():
			p.newline()
			b = append(b, '\n')
			continue
		case c == '\\' && q == '"':
			p.i++
			switch {
			case p.i == len(p.data):
				continue // unterminated: reported above
			case p.atNewline():
				p.newline()
				continue
			}
			if e := p.data[p.i]; e == '"' || e == '\\' || e == '`' || e == '$' {
				b = append(b, e)
			} else {
				b = append(b, '\\', e)
			}
		default:
			b = append(b, c)
		}
		p.i++
	}
}

// rest is what is left of the current line.
func (p *envParser) rest() string {
	end := p.i
	for end < len(p.data) && p.data[end] != '\n' {
		end++
	}
	return strings.TrimRight(string(p.data[p.i:end]), "\r")
}

// StartEnv is the environment of one start of s: Env, with the variables
// of its env files, read now, over tend's own and the user's, and under
// its environment table. Without env files it is Env itself (shared: never
// change it in place). An error names the file and the line; an optional
// file that does not exist is skipped.
func (s *Service) StartEnv() ([]string, error) {
	if len(s.EnvFiles) == 0 {
		return s.Env, nil
	}
	vars, err := ReadEnvFiles(s.EnvFiles)
	if err != nil {
		return nil, err
	}
	for k := range s.Environment {
		delete(vars, k) // the environment table is over every env file
	}
	if len(vars) == 0 {
		return s.Env, nil
	}
	return overlayEnv(s.Env, vars), nil
}

// overlayEnv returns env (one "NAME=value" per name, sorted by name) with
// the variables of over set, sorted by name again.
func overlayEnv(env []string, over map[string]string) []string {
	out := make([]string, 0, len(env)+len(over))
	for _, kv := range env {
		if _, ok := over[envName(kv)]; !ok {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(over)) {
		out = append(out, k+"="+over[k])
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(envName(a), envName(b)) })
	return out
}

// envFiles reads the env_file key of t: a list of paths (or one path),
// each optional when written with a leading "-". Each file is read once
// here, so that a missing required file or a bad line is reported at load
// and by `tend check`, on the env_file key's line.
func (p *parser) envFiles(t *table) []EnvFile {
	const key = "env_file"
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	var paths []string
	switch x := v.(type) {
	case string:
		s, ok := t.expand(key, x)
		if !ok {
			return nil
		}
		paths = []string{s}
	case []any:
		if paths, ok = t.stringArray(key, x); !ok {
			return nil
		}
	default:
		t.errorf(key, "must be an array of paths such as [\"/etc/app.env\", \"-/etc/app.local.env\"], not %s", typeName(v))
		return nil
	}
	if len(paths) > MaxEnvFiles {
		t.errorf(key, "lists %d files; at most %d", len(paths), MaxEnvFiles)
		return nil
	}
	var files []EnvFile
	for _, s := range paths {
		f := EnvFile{Path: s}
		if rest, ok := strings.CutPrefix(s, "-"); ok {
			f.Optional, f.Path = true, rest
		}
		if f.Path == "" {
			t.errorf(key, "has an empty path; give the file's path (\"-PATH\" for one that may be missing)")
			continue
		}
		if !filepath.IsAbs(f.Path) {
			f.Path = filepath.Join(p.dirOf(t, key), f.Path)
		}
		if err := p.checkEnvFile(f); err != nil {
			t.errorf(key, "%s", err)
		}
		files = append(files, f)
	}
	return files
}

// serviceEnvFiles is a service's list: the top-level env_file, then its own.
func (p *parser) serviceEnvFiles(t *table) []EnvFile {
	own := p.envFiles(t)
	if len(own) == 0 {
		return p.globalEnvFiles // shared by the services: never changed in place
	}
	return slices.Concat(p.globalEnvFiles, own)
}

// checkEnvFile reads f as a start would and says what is wrong with it.
func (p *parser) checkEnvFile(f EnvFile) error {
	err, seen := p.envFileErrs[f.Path]
	if !seen {
		_, err = ReadEnvFile(f.Path)
		if p.envFileErrs == nil {
			p.envFileErrs = make(map[string]error)
		}
		p.envFileErrs[f.Path] = err
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if f.Optional {
			return nil
		}
		return fmt.Errorf("%w (write \"-%s\" if the file may be missing)", err, f.Path)
	}
	return err
}

// dirOf is the absolute directory of the file that key of t came from: a
// relative env_file is relative to the file that names it, included or not.
func (p *parser) dirOf(t *table, key string) string {
	src := t.src
	if src == nil {
		src = p.sourceOf(t.child(key))
	}
	dir, err := filepath.Abs(filepath.Dir(src.path))
	if err != nil {
		return filepath.Dir(src.path)
	}
	return dir
}
