// Package cli parses tend's command line: tini's and dumb-init's options,
// tend's own, and the check/ctl subcommands. Parsing stops at the first
// non-option, as getopt does with a leading '+', so `tend sh -c 'x'` needs
// no `--`.
package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
)

// Options is everything the command line and the TINI_*/TEND_* environment
// say. Zero values are the defaults.
type Options struct {
	Subcommand string   // "" (run), "check" or "ctl"
	SubArgs    []string // arguments after the subcommand
	Command    []string // the main program and its arguments

	KillGroup   bool                // -g / TINI_KILL_PROCESS_GROUP: signal the main program's whole group
	ExitRemap   reaper.ExitRemap    // -e CODE: these exit codes of the main program are reported as 0
	ParentDeath unix.Signal         // -p SIG: signal tend gets when its parent dies; 0 = none
	Verbosity   int                 // -v count or TINI_VERBOSITY; 0 = warnings and errors
	WarnOrphans bool                // -w: log each reaped process that tend did not start
	Rewrite     signals.Rewrite     // -r S:R
	Config      string              // -f/--config or TEND_CONFIG
	VM          bool                // --vm: act as a VM's init even if /proc is mounted
	Grace       time.Duration       // TEND_GRACE: time leftovers get between SIGTERM and SIGKILL at exit; default 2s
	Action      string              // "version", "help" or "license" when one of those was asked
	Env         func(string) string // how the environment was read; kept for subcommands
}

// DefaultGrace is how long leftovers get between SIGTERM and SIGKILL when
// the main program has exited.
const DefaultGrace = 2 * time.Second

// UsageError is a bad command line; tend reports it in one line and exits 2.
type UsageError struct{ msg string }

func (e *UsageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &UsageError{msg: fmt.Sprintf(format, a...)}
}

// Parse reads args (without the program name) and the environment.
func Parse(args []string, getenv func(string) string) (Options, error) {
	o := Options{ExitRemap: reaper.ExitRemap{}, Rewrite: signals.Rewrite{}, Env: getenv}
	if err := o.fromEnv(getenv); err != nil {
		return o, err
	}
	if len(args) > 0 && (args[0] == "check" || args[0] == "ctl") {
		o.Subcommand, o.SubArgs = args[0], args[1:]
		return o, nil
	}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			o.Command = args[i+1:]
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			o.Command = args[i:]
			break
		}
		next := func(opt string) (string, error) {
			if i+1 >= len(args) {
				return "", usagef("option %s needs a value", opt)
			}
			i++
			return args[i], nil
		}
		var err error
		if strings.HasPrefix(arg, "--") {
			err = o.long(arg, next)
		} else {
			err = o.short(arg[1:], next)
		}
		if err != nil {
			return o, err
		}
		if o.Action != "" {
			return o, nil
		}
	}
	if len(o.Command) == 0 && o.Config == "" {
		return o, usagef("no program to run: use tend [OPTIONS] -- PROGRAM [ARGS...] or tend --config FILE")
	}
	return o, nil
}

func (o *Options) fromEnv(getenv func(string) string) error {
	// TINI_SUBREAPER, like -s, asks for what tend does anyway when it is
	// not PID 1 (it registers as a child subreaper): nothing to record.
	if getenv("TINI_KILL_PROCESS_GROUP") != "" {
		o.KillGroup = true
	}
	if v := getenv("TINI_VERBOSITY"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return usagef("TINI_VERBOSITY=%q must be a whole number 0 or more", v)
		}
		o.Verbosity = n
	}
	o.Config = getenv("TEND_CONFIG")
	o.Grace = DefaultGrace
	if v := getenv("TEND_GRACE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return usagef("TEND_GRACE=%q must be a duration such as 2s or 500ms", v)
		}
		o.Grace = d
	}
	return nil
}

// short handles one word of short options, which may be bundled ("-vvg")
// and may carry their value ("-e143").
func (o *Options) short(word string, next func(string) (string, error)) error {
	for j := 0; j < len(word); j++ {
		c := word[j]
		opt := "-" + string(c)
		value := func() (string, error) {
			if rest := word[j+1:]; rest != "" {
				j = len(word)
				return rest, nil
			}
			return next(opt)
		}
		switch c {
		case 's': // tini's subreaper flag: tend is one anyway
		case 'g':
			o.KillGroup = true
		case 'v':
			o.Verbosity++
		case 'w':
			o.WarnOrphans = true
		case 'c':
			// dumb-init's single-child mode is how tend always works.
		case 'l':
			o.Action = "license"
			return nil
		case 'h':
			o.Action = "help"
			return nil
		case 'e', 'p', 'r', 'f':
			v, err := value()
			if err != nil {
				return err
			}
			if err := o.set(opt, v); err != nil {
				return err
			}
		default:
			return usagef("unknown option %s (see tend --help)", opt)
		}
	}
	return nil
}

func (o *Options) long(arg string, next func(string) (string, error)) error {
	name, v, hasValue := strings.Cut(arg, "=")
	flag := func() error {
		if hasValue {
			return usagef("option %s takes no value", name)
		}
		return nil
	}
	switch name {
	case "--help":
		o.Action = "help"
		return flag()
	case "--version":
		o.Action = "version"
		return flag()
	case "--license":
		o.Action = "license"
		return flag()
	case "--single-child":
		return flag()
	case "--subreaper": // as -s
		return flag()
	case "--vm":
		o.VM = true
		return flag()
	case "--verbose":
		o.Verbosity++
		return flag()
	case "--rewrite", "--config":
		if !hasValue {
			var err error
			if v, err = next(name); err != nil {
				return err
			}
		}
		return o.set(name, v)
	}
	return usagef("unknown option %s (see tend --help)", name)
}

// set applies an option that takes a value.
func (o *Options) set(opt, v string) error {
	switch opt {
	case "-e":
		code, err := strconv.Atoi(v)
		if err != nil || code < 0 || code > 255 {
			return usagef("-e %q: the exit code must be a number from 0 to 255", v)
		}
		o.ExitRemap[code] = true
	case "-p":
		sig, err := signals.Parse(v)
		if err != nil {
			return usagef("-p: %v", err)
		}
		if why := neverReceived(sig); why != "" {
			return usagef("-p %s: %s; choose another signal", v, why)
		}
		o.ParentDeath = sig
	case "-r", "--rewrite":
		from, to, err := signals.ParseRewrite(v)
		if err != nil {
			return usagef("%s: %v", opt, err)
		}
		if why := rewriteNeverApplies(from); why != "" {
			return usagef("%s %s: %s, so this rewrite could never apply; remove it", opt, v, why)
		}
		o.Rewrite[from] = to
	case "-f", "--config":
		if v == "" {
			return usagef("%s needs a file name", opt)
		}
		o.Config = v
	default:
		return errors.New("internal: unhandled option " + opt)
	}
	return nil
}

// neverReceived says why tend can never be handed sig, or "" when it can:
// the parent-death signal is only of use if it can. SIGKILL and SIGSTOP
// are not handed over either, but the kernel acts on them, as -p KILL means.
func neverReceived(sig unix.Signal) string {
	switch {
	case sig == unix.SIGKILL || sig == unix.SIGSTOP:
		return ""
	case slices.Contains(signals.Handled(), os.Signal(sig)):
		return ""
	case sig == unix.SIGURG:
		return "SIGURG is the Go runtime's own (it preempts goroutines with it) and never reaches tend"
	case sig >= 32 && sig <= 34:
		return fmt.Sprintf("signal %d (%s) never reaches tend: the Go runtime keeps signals 32-34 for itself", int(sig), signals.Name(sig))
	}
	return signals.Name(sig) + " never reaches tend"
}

// rewriteNeverApplies says why a rewrite of sig (received as sig) could
// never apply, or "" when it can: tend never receives sig, or keeps it for
// itself in every mode before any rewrite (signals.Route).
func rewriteNeverApplies(sig unix.Signal) string {
	if sig == unix.SIGKILL || sig == unix.SIGSTOP {
		return signals.Name(sig) + " cannot be caught"
	}
	if why := neverReceived(sig); why != "" {
		return why
	}
	for _, mode := range []signals.Mode{signals.Wrapper, signals.Supervisor, signals.Wrapper | signals.VM, signals.Supervisor | signals.VM} {
		if signals.Decide(mode, sig) != signals.Absorb {
			return ""
		}
	}
	switch sig {
	case unix.SIGCHLD:
		return "SIGCHLD is tend's own (it reaps children on it) and is never passed on"
	case unix.SIGPIPE:
		return "SIGPIPE is absorbed by tend (it cannot tell one sent with kill from its own broken output)"
	}
	return signals.Name(sig) + " is kept by tend for itself"
}

// Help is printed by -h/--help.
const Help = `tend: a PID-1 init and process supervisor

Usage:
  tend [OPTIONS] [--] PROGRAM [ARGS...]          run PROGRAM as the main program (like tini)
  tend [OPTIONS] --config FILE [-- PROGRAM ...]  supervise the services in FILE
  tend check [FILE]                              validate a config file
  tend ctl [--socket PATH] VERB [ARGS]           talk to a running tend
  tend --version | -h | --help | -l

Options:
  -s              register as a child subreaper (automatic when not PID 1; env TINI_SUBREAPER)
  -g              send forwarded signals to the main program's process group (env TINI_KILL_PROCESS_GROUP)
  -e CODE         report exit code CODE of the main program as 0 (repeatable)
  -p SIGNAL       signal tend receives when its parent dies (prctl PR_SET_PDEATHSIG)
  -v              more logging (repeatable; env TINI_VERBOSITY=N)
  -w              log every reaped process that tend did not start
  -r, --rewrite S:R  deliver received signal S as R; R = 0 drops S (repeatable)
  -c, --single-child accepted for dumb-init compatibility (always the case)
  -f, --config FILE  services to supervise (env TEND_CONFIG)
  --vm            run as a virtual machine's init (mounts, hostname, power-off)
  -l              print the licence

Environment: TEND_CONFIG, TEND_GRACE (time leftovers get between SIGTERM and SIGKILL at exit, default 2s),
TINI_SUBREAPER, TINI_KILL_PROCESS_GROUP, TINI_VERBOSITY.
`
