// Package pid1 is tend's bootstrap: everything that makes a Go program fit
// to be process 1 (runtime tuning, signal subscription, subreaper, panic
// guard) and the step that ends it (leftovers terminated, exit status).
package pid1

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/api"
	"github.com/tend-init/tend/cli"
	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/logging"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
	"github.com/tend-init/tend/spawner"
	"github.com/tend-init/tend/supervise"
	"github.com/tend-init/tend/tree"
)

// afterStart is a test build's hook (see inject_panic.go).
var afterStart = func() {}

func init() {
	// Only an init function can keep main on the main thread (main.main
	// starts there; an unlocked goroutine may move), which wrapper mode
	// needs for signals.Catcher. Main unlocks it in every other mode.
	runtime.LockOSThread()
}

// toMain carries work to the main thread while tend runs in wrapper mode
// (see runOffMain); nil in every other mode.
var toMain chan func()

// Early is what the tend binary subscribed to before anything else of it
// ran (package signals/early), and GOMAXPROCS as it was before that init
// set it to 1. The zero Early is none: run subscribes to everything itself.
type Early struct {
	Signals  signals.Early
	MaxProcs int
}

// early is Main's argument, set before any goroutine of tend's starts.
var early Early

// Main runs tend as described by o and returns its exit status. As a VM's
// init (SPEC section 9) it does not return: it powers the machine off.
func Main(o cli.Options, e Early) int {
	early = e
	ensureEmptySigmask()
	v := detectVM(o)
	if v == nil && o.Config == "" {
		code := runOffMain(o)
		flushLog()
		return code
	}
	runtime.UnlockOSThread()
	if v != nil {
		return runVM(o, v)
	}
	code := run(o, nil)
	flushLog()
	return code
}

// runOffMain runs tend in wrapper mode on a goroutine of its own and keeps
// the main goroutine, locked to the main thread, for the work that must be
// done there: catching signals (runWrapper). Not the other way round,
// because every wait of a locked goroutine costs a hand-off between two
// threads, and start-up waits often (one round trip to the runtime's
// signal thread per signal subscribed): run on the main thread took 1.7 ms
// longer to start /bin/true.
func runOffMain(o cli.Options) int {
	// The main thread runs no goroutine but this one, and is not among
	// the threads reserveThreads masks; it blocks the queued signals too.
	_ = signals.BlockQueued(signals.SetOf(signals.Queued(signals.Urgent(o.Rewrite))))
	toMain = make(chan func())
	done := make(chan int, 1)
	guard.Go("tend", func() {
		code := 1 // a panic (reported by the guard)
		defer func() { done <- code }()
		code = run(o, nil)
	})
	for {
		select {
		case f := <-toMain:
			f()
		case code := <-done:
			return code
		}
	}
}

// runVM runs tend as a VM's init and ends in a power-off or reboot, even
// after a panic on this goroutine (one in any other goroutine is recovered
// by the guard and shuts the supervisor down). It returns only when the
// machine cannot be powered off (see vm.end).
func runVM(o cli.Options, v *vm) int {
	code := 1
	func() {
		defer func() {
			if p := recover(); p != nil {
				log := v.logger()
				if log == nil {
					log = newLogger(o.Verbosity, nil)
				}
				log.Errorf("panic: %v; powering off\n%s", p, debug.Stack())
				code = 1
			}
		}()
		code = run(o, v)
	}()
	return v.end(code)
}

// run is tend from start to the moment it would exit; v is nil unless tend
// is a VM's init.
func run(o cli.Options, v *vm) int {
	urgent := signals.Urgent(o.Rewrite)
	// Subscribe as early as the threads' masks allow (tuneRuntime): until
	// then a SIGTERM, a SIGHUP or a SIGSEGV sent with kill would end tend.
	// The signals tend acts on get a channel of their own, so a flood of
	// others can never crowd them out (os/signal drops what does not fit
	// in a channel).
	chld := make(chan os.Signal, 1)
	queue := signals.NewQueue(urgent)
	tuneRuntime(o.Config == "", signals.ThreadBlocked(urgent), func() {
		queue.Subscribe(chld, early.Signals)
		signals.ShieldReserved(os.Getpid() == 1)
	})
	sigs := queue.C()

	if v != nil {
		// File systems and the console first, so that even a bad config
		// is reported on the console.
		v.setUp(newLogger(o.Verbosity, nil))
	}

	var cfg *config.Config
	var loader *config.Loader // keeps what each load read, so a reload reads only what changed
	if o.Config != "" {
		var err error
		loader = config.NewLoader(o.Config, os.LookupEnv)
		if cfg, err = loader.Load(); err != nil {
			// Every error, one per line; nothing was started. Through the
			// log queue, behind anything logged before, and never stuck on
			// a stalled stderr.
			fmt.Fprintln(stderrLog(), err)
			return 2
		}
	}

	log := newLogger(o.Verbosity, cfg)
	if cfg != nil {
		for _, w := range cfg.Warnings {
			log.Warn(w.Error())
		}
	}
	if v != nil {
		hostname := ""
		if cfg != nil {
			hostname = cfg.Hostname
		}
		v.configure(hostname, log)
	}
	becomeReaper(o, log)
	if o.ParentDeath != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(o.ParentDeath), 0, 0, 0); err != nil {
			log.Warnf("cannot set parent-death signal %s: %v", signals.Name(o.ParentDeath), err)
		}
	}

	var onOrphan func(reaper.Exit) // nil: the reaper keeps no record of orphans
	if o.WarnOrphans {
		onOrphan = func(e reaper.Exit) { log.Warnf("reaped zombie process %d (%s)", e.Pid, e) }
	}
	r := reaper.New(onOrphan)
	stopReaper := make(chan struct{})
	defer close(stopReaper)
	guard.Go("reaper", func() { r.Run(chld, stopReaper) })
	afterStart()

	if cfg == nil {
		code := runGuarded(func() int { return runWrapper(o, r, sigs, log, v) }, log)
		terminateLeftovers(r, o.Grace, log)
		return code
	}
	// Every signal is decided once, here at the edge: the supervisor gets
	// what to do, never a signal to interpret again.
	orders := routeOrders(sigs, o.Rewrite, v)
	sink := supervise.NewSink(os.Stdout, os.Stderr, cfg.LogFormat)
	sink.KeepLogs(cfg.LogBuffer)
	tracker := tree.New(r, cfg.Cgroups)
	defer tracker.Close()
	log.Info(tracker.Notice())
	// After the tracker: in tend's cgroup the spawner would be a process
	// other than tend, and the cgroup not tend's to divide.
	stopSpawner := startSpawner(r, log)
	defer stopSpawner()
	sup := supervise.New(cfg, supervise.Options{
		Launcher:  launcher{r, tracker},
		Log:       log,
		Sink:      sink,
		ExitRemap: o.ExitRemap,
		KillGroup: o.KillGroup,
		StartMain: mainStarter(r, o.Command, v),
		Panics:    guard.Panics(),
		Orphans:   r.Orphans,
		Leftovers: func(grace time.Duration, done func()) {
			guard.Go("leftovers", func() {
				stopSpawner()
				terminateLeftovers(r, grace, log)
				done()
			})
		},
		LoadConfig: loader.Load,
	})
	// tend ctl poweroff|reboot: for a VM's init only (nil elsewhere).
	var power api.Power
	if v != nil {
		power = v.power
	}
	stopControl := startControl(cfg, sup, power, log)
	code := runGuarded(func() int { return sup.Run(orders) }, log)
	stopControl()
	// The shutdown's last phase did this already; again in case Run ended
	// by a panic. With no child left it returns at once.
	stopSpawner()
	terminateLeftovers(r, sup.Remaining(), log)
	if !sink.Wait(supervise.OutputStall) {
		log.Warn("some service output was still open when tend exited")
	}
	return code
}

// launcher is what the supervisor starts processes with: the reaper for
// one process (checks, the main program), the tracker for services.
type launcher struct {
	*reaper.Reaper
	t *tree.Tracker
}

func (l launcher) StartService(name string, c reaper.Cmd, w tree.Watch) (supervise.ServiceRun, error) {
	run, err := l.t.Start(name, c, w)
	if err != nil {
		return nil, err
	}
	return run, nil
}

func (l launcher) ForgetService(name string) { l.t.Forget(name) }

func mainStarter(r *reaper.Reaper, argv []string, v *vm) func(func(reaper.Exit)) (int, error) {
	if len(argv) == 0 {
		return nil
	}
	return func(onExit func(reaper.Exit)) (int, error) { return startMain(r, argv, v, onExit) }
}

// runGuarded turns a panic on the main goroutine into exit status 1; the
// caller still terminates the leftovers.
func runGuarded(run func() int, log *logrus.Logger) (code int) {
	defer func() {
		if v := recover(); v != nil {
			log.Errorf("panic: %v; shutting down", v)
			code = 1
		}
	}()
	return run()
}

// becomeReaper makes orphans of tend's descendants come back to tend when
// it is not PID 1 (as PID 1 they do anyway).
func becomeReaper(o cli.Options, log *logrus.Logger) {
	if os.Getpid() == 1 {
		return
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.Warnf("not PID 1 and cannot register as a child subreaper (%v): orphans of the program will not be reaped by tend", err)
		return
	}
	log.Info("not PID 1: registered as a child subreaper")
}

// newLogger sets tend's own logging: wrapper mode logs warnings unless -v
// asks for more; a config's log_level is the floor in supervisor mode, and
// -v can only add to it. Every logger writes through the one log queue on
// stderr, so no loop ever waits on tend's own output.
func newLogger(verbosity int, cfg *config.Config) *logrus.Logger {
	log := logrus.New()
	out := stderrLog()
	log.Out = out
	// Colour only on a terminal (logrus cannot see one through the queue,
	// so it is told), and never with NO_COLOR (no-color.org).
	_, noColor := os.LookupEnv("NO_COLOR")
	color := isTerminal(2) && !noColor
	log.Formatter = logging.NewFormatter(logging.FormatText, color)
	levels := []logrus.Level{logrus.WarnLevel, logrus.InfoLevel, logrus.DebugLevel, logrus.TraceLevel}
	log.Level = levels[min(verbosity, len(levels)-1)]
	if cfg != nil {
		if lvl, err := logrus.ParseLevel(cfg.LogLevel); err == nil && lvl > log.Level {
			log.Level = lvl
		}
		log.Formatter = logging.NewFormatter(cfg.LogFormat, color)
	}
	out.SetNotice(dropNotice(log))
	return log
}

// stderrLog is the queue in front of descriptor 2 that all of tend's own
// log lines go through (logging.FD: no second SIGPIPE from the runtime on
// EPIPE, no change to the descriptor's blocking mode).
var stderrLog = sync.OnceValue(func() *logging.Writer {
	return logging.New(logging.FD(2), logging.Options{})
})

// dropNotice formats the report of dropped log lines in log's format, so a
// JSON log stays JSON.
func dropNotice(log *logrus.Logger) func(n uint64) []byte {
	formatter := log.Formatter
	return func(n uint64) []byte {
		e := logrus.NewEntry(log)
		e.Time, e.Level = time.Now(), logrus.WarnLevel
		e.Message = fmt.Sprintf("%d log lines dropped (tend's log output was stalled or gone)", n)
		b, err := formatter.Format(e)
		if err != nil {
			return fmt.Appendf(nil, "tend: %d log lines dropped\n", n)
		}
		return b
	}
}

// logFlushLimit bounds the wait for the last log lines on the way out: they
// are written when the output works, and a stalled one costs this, once.
const logFlushLimit = time.Second

func flushLog() { stderrLog().Flush(logFlushLimit) }

// startSpawner starts the spawner (package spawner), unless TEND_SPAWNER=0
// turns it off, and returns what stops it (once; again does nothing). A
// spawner that cannot start leaves tend forking in-process, as before.
func startSpawner(r *reaper.Reaper, log *logrus.Logger) (stop func()) {
	if os.Getenv("TEND_SPAWNER") == "0" {
		log.Info("the spawner is turned off (TEND_SPAWNER=0): services are started by forking tend")
		return func() {}
	}
	sp, err := spawner.Start(r, func(why string) { log.Warn(why) })
	if err != nil {
		log.Warnf("cannot start the spawner (%v): services are started by forking tend", err)
		return func() {}
	}
	log.Debugf("spawner running as process %d", sp.Pid())
	return sync.OnceFunc(func() {
		r.SetSpawner(nil)
		sp.Stop()
	})
}
