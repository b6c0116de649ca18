// Package execshim sets up a service's process before its program runs:
// resource limits, umask, nice value, OOM score adjustment (issue 20).
//
// Go cannot run code in a forked child between fork and exec, and
// syscall.SysProcAttr has no field for any of these. Setting them in tend
// around the fork does not work either: umask is process-wide (every
// goroutine of tend's that creates a file meanwhile would get it), nice is
// per thread, and the limits and the OOM score would be tend's own for a
// moment, its descriptors over a lowered nofile limit. prlimit(2) and
// /proc/PID/oom_score_adj on the child after the start are racy: the
// program already runs, may have read its limits (a server sizes its
// descriptor table at start) or forked. So the child execs tend's own
// binary first, /proc/self/exe with Flag, which applies the settings to
// itself, drops to the service's user and group, and then execve()s the
// real program with the real argv and environment: the settings hold from
// the program's first instruction, and the program's pid is the one tend
// started. It is done the way the spawner is (spawner.Magic): main
// recognises Flag before anything else of tend runs. A service with none
// of these keys is started directly, at no cost.
//
// The settings travel in one argument (never in the environment, so
// nothing of the shim reaches the program, and /proc/PID/cmdline is the
// program's once it runs). The shim changes the credentials itself, after
// the settings, because a negative nice, a lowered oom_score_adj and a
// raised hard limit need root's privileges, which a service's user does
// not have.
package execshim

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Flag is the argument that makes the tend binary the shim.
const Flag = "--tend-internal-exec-shim"

// Self is the binary the shim is: tend's own.
const Self = "/proc/self/exe"

// Exit codes of a shim that cannot do its work, as a shell's: 126 when
// a setting or the exec failed, 127 when the program is not there.
const (
	codeFailed   = 126
	codeNotFound = 127
)

// Rlimit is one resource limit: soft and hard both become Value.
type Rlimit struct {
	Name     string // for messages: "nofile"
	Resource int
	Value    uint64 // unix.RLIM_INFINITY for unlimited
}

// Settings are what the shim applies before the exec.
type Settings struct {
	Rlimits     []Rlimit
	Umask       *int
	Nice        *int
	OOMScoreAdj *int
	Cred        *syscall.Credential // nil: keep tend's
}

// IsShim reports whether args (os.Args) are the shim's.
func IsShim(args []string) bool {
	return len(args) >= 5 && args[1] == Flag
}

// Argv is the shim's argument vector for running path (already looked
// up) with argv under s; the caller starts Self with it and without a
// credential (the shim sets s.Cred itself).
func Argv(path string, argv []string, s Settings) []string {
	return append([]string{Self, Flag, s.encode(), path}, argv...)
}

// encode writes s as one argument: fields separated by spaces, each
// KEY=VALUE: r=RESOURCE:VALUE:NAME (one per limit), u=UMASK (octal),
// n=NICE, o=OOM, c=UID:GID:G1,G2,... .
func (s Settings) encode() string {
	var f []string
	for _, r := range s.Rlimits {
		f = append(f, fmt.Sprintf("r=%d:%d:%s", r.Resource, r.Value, r.Name))
	}
	if s.Umask != nil {
		f = append(f, "u="+strconv.FormatInt(int64(*s.Umask), 8))
	}
	if s.Nice != nil {
		f = append(f, "n="+strconv.Itoa(*s.Nice))
	}
	if s.OOMScoreAdj != nil {
		f = append(f, "o="+strconv.Itoa(*s.OOMScoreAdj))
	}
	if c := s.Cred; c != nil {
		groups := make([]string, len(c.Groups))
		for i, g := range c.Groups {
			groups[i] = strconv.FormatUint(uint64(g), 10)
		}
		f = append(f, fmt.Sprintf("c=%d:%d:%s", c.Uid, c.Gid, strings.Join(groups, ",")))
	}
	if len(f) == 0 {
		return "-"
	}
	return strings.Join(f, " ")
}

func decode(arg string) (Settings, error) {
	var s Settings
	if arg == "-" {
		return s, nil
	}
	bad := func(f string) error { return fmt.Errorf("bad setting %q", f) }
	num := func(v string) (*int, error) {
		n, err := strconv.Atoi(v)
		return &n, err
	}
	for _, f := range strings.Fields(arg) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return s, bad(f)
		}
		var err error
		switch k {
		case "r":
			p := strings.SplitN(v, ":", 3)
			if len(p) != 3 {
				return s, bad(f)
			}
			var r Rlimit
			r.Name = p[2]
			if r.Resource, err = strconv.Atoi(p[0]); err == nil {
				r.Value, err = strconv.ParseUint(p[1], 10, 64)
			}
			s.Rlimits = append(s.Rlimits, r)
		case "u":
			var n int64
			n, err = strconv.ParseInt(v, 8, 32)
			m := int(n)
			s.Umask = &m
		case "n":
			s.Nice, err = num(v)
		case "o":
			s.OOMScoreAdj, err = num(v)
		case "c":
			p := strings.SplitN(v, ":", 3)
			if len(p) != 3 {
				return s, bad(f)
			}
			c := &syscall.Credential{}
			var id uint64
			if id, err = strconv.ParseUint(p[0], 10, 32); err == nil {
				c.Uid = uint32(id)
				if id, err = strconv.ParseUint(p[1], 10, 32); err == nil {
					c.Gid = uint32(id)
				}
			}
			for _, g := range strings.Split(p[2], ",") {
				if g == "" || err != nil {
					continue
				}
				id, err = strconv.ParseUint(g, 10, 32)
				c.Groups = append(c.Groups, uint32(id))
			}
			s.Cred = c
		default:
			err = errors.New("unknown")
		}
		if err != nil {
			return s, bad(f)
		}
	}
	return s, nil
}

// Main is the shim's main: it applies the settings in os.Args[2] and
// execs os.Args[3] with os.Args[4:] as its argv. It returns only on a
// failure, with the status to exit with, having said why on stderr (the
// service's output).
func Main(args []string) int {
	// nice is a thread's, and execve keeps the calling thread's: both
	// happen on this one.
	runtime.LockOSThread()
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "tend: cannot start %s: %s\n", args[4], fmt.Sprintf(format, a...))
		return code
	}
	s, err := decode(args[2])
	if err != nil {
		return fail(codeFailed, "%v (%s is tend's own)", err, Flag)
	}
	if err := s.apply(); err != nil {
		return fail(codeFailed, "%v", err)
	}
	err = syscall.Exec(args[3], args[4:], os.Environ())
	code := codeFailed
	if errors.Is(err, unix.ENOENT) {
		code = codeNotFound
	}
	return fail(code, "exec %s: %v", args[3], err)
}

// apply sets s on this process (and its thread): the OOM score, nice and
// the limits while still privileged, then the credentials, then the umask.
func (s Settings) apply() error {
	if s.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*s.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("oom_score_adj = %d: %v", *s.OOMScoreAdj, errors.Unwrap(err))
		}
	}
	if s.Nice != nil {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, *s.Nice); err != nil {
			return fmt.Errorf("nice = %d: %v", *s.Nice, err)
		}
	}
	for _, r := range s.Rlimits {
		// syscall.Setrlimit, not unix's: for nofile it also keeps Go's
		// exec from putting back the soft limit the runtime started with.
		if err := syscall.Setrlimit(r.Resource, &syscall.Rlimit{Cur: r.Value, Max: r.Value}); err != nil {
			return fmt.Errorf("limits.%s = %d: %v", r.Name, r.Value, err)
		}
	}
	if c := s.Cred; c != nil {
		// Go's own Setgroups, Setgid and Setuid change every thread.
		if err := syscall.Setgroups(intSlice(c.Groups)); err != nil {
			return fmt.Errorf("setgroups: %v", err)
		}
		if err := syscall.Setgid(int(c.Gid)); err != nil {
			return fmt.Errorf("setgid %d: %v", c.Gid, err)
		}
		if err := syscall.Setuid(int(c.Uid)); err != nil {
			return fmt.Errorf("setuid %d: %v", c.Uid, err)
		}
	}
	if s.Umask != nil {
		unix.Umask(*s.Umask)
	}
	return nil
}

func intSlice(g []uint32) []int {
	out := make([]int, len(g))
	for i, v := range g {
		out[i] = int(v)
	}
	return out
}
