package reaper

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Exit codes a shell uses when a program cannot be run.
const (
	CodeNotExecutable = 126
	CodeNotFound      = 127
)

// DefaultPath is used when the environment has no PATH, as execvp does.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// CodeCouldNotRun is the status of a start that failed for want of a
// resource (ErrCouldNotRun), as tini reports a failed fork.
const CodeCouldNotRun = 1

// ErrCouldNotRun is wrapped by the error of a start that failed because
// tend was short of something (processes or threads: EAGAIN; descriptors:
// EMFILE, ENFILE; memory: ENOMEM). Nothing is wrong with the program, and
// a later try may work: it is neither "not executable" (126) nor a failure
// of the program. The errno stays wrapped too:
//
//	errors.Is(err, reaper.ErrCouldNotRun) // retry later, do not count it
//	errors.Is(err, unix.EAGAIN)           // which resource
var ErrCouldNotRun = errors.New("could not run")

// StartError says why a program could not be started and which exit code a
// shell would report for it.
type StartError struct {
	Name string
	Code int
	Err  error
}

func (e *StartError) Error() string {
	verb := "cannot run"
	if errors.Is(e.Err, ErrCouldNotRun) {
		verb = "could not run"
	}
	if e.Name == "" {
		return verb + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s %s: %v", verb, e.Name, e.Err)
}

// couldNotRun is a resource errno as ErrCouldNotRun.
type couldNotRun struct{ errno syscall.Errno }

func (e couldNotRun) Error() string {
	return e.errno.Error() + " (" + unix.ErrnoName(e.errno) + ")"
}

func (e couldNotRun) Unwrap() []error { return []error{ErrCouldNotRun, e.errno} }

// OutOfResources reports whether err says tend lacked a resource to start
// a program (a pids limit, file descriptors, memory: EAGAIN, EMFILE,
// ENFILE, ENOMEM), whoever made the error: an exec, or the pipes set up
// before it. Such a start may work a moment later and says nothing about
// the program.
func OutOfResources(err error) bool {
	_, ok := shortOf(err)
	return ok
}

// shortOf is OutOfResources, with the errno.
func shortOf(err error) (syscall.Errno, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, false
	}
	switch errno {
	case syscall.EAGAIN, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM:
		return errno, true
	}
	return 0, false
}

func (e *StartError) Unwrap() error { return e.Err }

// ExitCode is the status a shell would report for a failed start: 126 or
// 127 for a program that cannot be run, 1 for anything else (ErrCouldNotRun
// included).
func ExitCode(err error) int {
	var se *StartError
	if errors.As(err, &se) {
		return se.Code
	}
	return 1
}

// LookPath resolves name the way execvp does: a name with a slash is used as
// is, anything else is searched in PATH from env. A file that exists but is
// not executable is remembered, so that "permission denied" (126) wins over
// "not found" (127) when nothing better turns up.
func LookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", startError(name, name, err)
		}
		return name, nil
	}
	path, ok := lookupEnv(env, "PATH")
	if !ok {
		path = DefaultPath
	}
	var denied error
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		candidate := filepath.Join(dir, name)
		err := executable(candidate)
		if err == nil {
			return candidate, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && denied == nil {
			denied = err
		}
	}
	if denied != nil {
		return "", &StartError{Name: name, Code: CodeNotExecutable, Err: denied}
	}
	return "", &StartError{Name: name, Code: CodeNotFound, Err: fmt.Errorf("not found in PATH %q", path)}
}

func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return syscall.EISDIR
	}
	return unix.Access(path, unix.X_OK)
}

func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// startError turns an exec failure into the shell's exit code: 127 when
// nothing is there, 126 when something is there but cannot be executed. The
// errno stays wrapped so callers can tell setup failures apart.
func startError(name, path string, err error) *StartError {
	if errno, ok := shortOf(err); ok {
		return &StartError{Name: name, Code: CodeCouldNotRun, Err: couldNotRun{errno}}
	}
	code, why := CodeNotExecutable, ""
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		code, why = CodeNotFound, "no such file or directory"
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		why = "permission denied (is it executable?)"
	case errors.Is(err, syscall.ENOEXEC):
		why = "not an executable format (a script needs a #! line)"
	case errors.Is(err, syscall.EISDIR):
		why = "is a directory"
	default:
		return &StartError{Name: name, Code: code, Err: err}
	}
	return &StartError{Name: name, Code: code, Err: execError{path, why, err}}
}

// execError reads as the user needs it and still unwraps to the errno.
type execError struct {
	path, why string
	errno     error
}

func (e execError) Error() string { return e.path + ": " + e.why }
func (e execError) Unwrap() error { return e.errno }
