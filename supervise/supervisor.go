package supervise

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
	"github.com/tend-init/tend/tree"
)

// Launcher starts and signals processes: the reaper and the process
// tracker (package tree) in production, a fake in unit tests.
type Launcher interface {
	// Start runs a check command: one process in its own group. onExit
	// is called once with its exit, maybe before Start returns; it must
	// not block.
	Start(c reaper.Cmd, onExit func(reaper.Exit)) (int, error)
	// Signal sends sig to a process Start or StartService started, or to
	// its process group.
	Signal(pid int, sig unix.Signal, group bool) error
	// StartService starts one run of a service. Every process the run
	// makes belongs to it; w hears when its main process ends and when the
	// last of them is gone.
	StartService(name string, c reaper.Cmd, w tree.Watch) (ServiceRun, error)
	// ForgetService: a reload removed the service and its last run is over.
	ForgetService(name string)
}

// ServiceRun is one run of a service: its main process and every process
// it started (*tree.Run in production).
type ServiceRun interface {
	Pid() int
	Signal(sig unix.Signal) // to every process of the run
	Kill()                  // SIGKILL to every process of the run
	Tracking() (tree.Mechanism, string)
}

// Options is what the supervisor needs besides the config.
type Options struct {
	Launcher  Launcher
	Log       *logrus.Logger
	Sink      *Sink
	ExitRemap reaper.ExitRemap // -e: the main program's exit codes reported as 0
	// StartMain starts the main program (after --), or is nil when there is
	// none; onExit is as for Launcher.Start. It is given to the supervisor
	// so the terminal handling stays in one place.
	StartMain func(onExit func(reaper.Exit)) (int, error)
	KillGroup bool // forward signals to the main program's process group
	// Panics delivers panics recovered in other goroutines; each one shuts
	// tend down. Nil means none are watched.
	Panics <-chan error
	// LoadConfig reads the config file again, for a reload; nil when there
	// is no file to read. It runs off the supervisor's goroutine.
	LoadConfig func() (*config.Config, error)
	// Orphans counts the processes reaped that no one started through the
	// reaper, for the metrics; nil when not counted.
	Orphans func() uint64
	// Leftovers stops every process still under tend (adopted orphans),
	// the shutdown's last phase, within grace, and calls done (once, from
	// any goroutine) when they are gone. Nil: there is no such phase.
	Leftovers func(grace time.Duration, done func())
}

// Supervisor runs the services of one config. All its state is owned by the
// goroutine in Run; everything else talks to it through the inbox.
type Supervisor struct {
	opt      Options
	cfg      *config.Config
	log      *logrus.Logger
	services map[string]*service
	order    []*service // dependency order; removed services still stopping at the end
	inbox    inbox
	now      func() time.Time
	done     chan struct{} // closed when Run has returned

	deps   depGraph
	events *Events

	reloads, reloadFailures int // for the metrics
	linesDropped            atomic.Uint64

	life       Life         // tend's own lifecycle (tendlife.go): the only record of the main program's state, the shutdown and the exit status
	main       *mainProgram // while the main program runs
	readyTimer *time.Timer
	startedAt  time.Time // when Run began: the main program's ready_timeout counts from it

	reloading, reloadAgain bool // a SIGHUP's config load is in flight; another came meanwhile

	essentialGaveUp string // the essential service whose end shut tend down, and how it ended (for GET /livez)

	shutdownSignal unix.Signal // what the main program gets first in the shutdown
	shutdownWhy    string      // for the log
	shutdownAt     time.Time
	deadline       *time.Timer
	finished       bool
}

type mainProgram struct {
	pid int
}

// EndReason is why Run returned: one of the reasons SPEC section 6 gives.
type EndReason string

const (
	EndSignal    EndReason = "signal"             // SIGTERM or SIGINT
	EndRequested EndReason = "shutdown requested" // tend ctl shutdown
	EndMain      EndReason = "main program ended" // or could not start
	EndEssential EndReason = "essential service gave up"
	EndCheck     EndReason = "health check failed (on_failure = shutdown)"
	EndNotReady  EndReason = "services not ready in time"
	EndSettled   EndReason = "every service ended by itself"
	EndPanic     EndReason = "internal error"
)

// New prepares a supervisor for cfg; Run starts it.
func New(cfg *config.Config, opt Options) *Supervisor {
	s := &Supervisor{opt: opt, cfg: cfg, log: opt.Log, services: map[string]*service{}, now: time.Now, done: make(chan struct{}), events: NewEvents(),
		life: Life{Main: MainNone, Phase: PhaseRunning}, shutdownSignal: unix.SIGTERM}
	if opt.StartMain != nil {
		s.life.Main = MainWaiting
	}
	s.inbox.init()
	for _, name := range cfg.Order {
		svc := newService(cfg.Services[name])
		s.services[name] = svc
		s.order = append(s.order, svc)
	}
	s.deps.rebuild(s.order, s.services)
	if opt.Sink != nil {
		var mu sync.Mutex
		dropped := map[string]uint64{}
		opt.Sink.OnDrop(func(service, stream string, lines uint64) {
			s.linesDropped.Add(lines)
			// A crash loop into a stalled output reports every run: say
			// it at 1, 10, 100, … lines, not once a restart.
			mu.Lock()
			before := dropped[service+" "+stream]
			after := before + lines
			dropped[service+" "+stream] = after
			mu.Unlock()
			if before == 0 || digits(after) > digits(before) {
				s.log.WithField("service", service).Warnf("%d lines dropped so far while %s was stalled (output of runs that had ended)", after, stream)
			}
		})
		opt.Sink.OnFileError(func(service, msg string) { s.log.WithField("service", service).Error(msg) })
	}
	return s
}

func digits(n uint64) int { return len(strconv.FormatUint(n, 10)) }

// Order is a received signal, already decided at the edge (signals.Route,
// the rewrite table, VM mode): what to do, and the signal that goes with it.
type Order struct {
	Action signals.Action // Shutdown, Reload or Forward
	// Signal is what the main program is sent first in a shutdown, or
	// what is forwarded.
	Signal unix.Signal
	Why    string // for the log; the signal's name when empty
}

// Run supervises until tend should exit and returns the exit status. The
// caller then terminates leftovers and waits for the output to drain.
func (s *Supervisor) Run(orders <-chan Order) int {
	defer close(s.done)
	if n := len(s.cfg.Files); n > 1 {
		s.log.Infof("supervising %d service(s) from %s and %d files it includes", len(s.services), s.cfg.Path, n-1)
	} else {
		s.log.Infof("supervising %d service(s) from %s", len(s.services), s.cfg.Path)
	}
	s.startedAt = s.now()
	if s.opt.StartMain != nil {
		s.readyTimer = time.AfterFunc(s.cfg.ReadyTimeout, func() { s.inbox.post(s.mainNotReady) })
	}
	s.progress()
	for !s.finished {
		select {
		case o := <-orders:
			s.onOrder(o)
		case <-s.inbox.wake:
			for _, fn := range s.inbox.drain() {
				fn()
			}
		case err := <-s.opt.Panics:
			s.log.Errorf("%v; shutting down", err)
			s.orderShutdown(EndPanic, unix.SIGTERM, "internal error")
		}
		s.progress()
	}
	if s.readyTimer != nil {
		s.readyTimer.Stop()
	}
	if s.deadline != nil {
		s.deadline.Stop()
	}
	return s.life.Code
}

// Remaining is what is left of shutdown_timeout, the leftovers' grace.
func (s *Supervisor) Remaining() time.Duration {
	if s.shutdownAt.IsZero() {
		return s.cfg.ShutdownTimeout
	}
	return max(0, s.cfg.ShutdownTimeout-s.now().Sub(s.shutdownAt))
}

// mainNotReady ends tend when the main program has waited ready_timeout
// for the services and they are not all ready.
func (s *Supervisor) mainNotReady() {
	if s.life.Main != MainWaiting || s.life.Phase != PhaseRunning {
		return
	}
	s.log.Errorf("services not ready after ready_timeout %s: %v", s.cfg.ReadyTimeout, s.notReady())
	s.shutdownWhy = "ready_timeout"
	s.lifeEvent(ReadyTimedOut, Facts{})
}

// current: svc is still the record the supervisor keeps under its name, so
// an event of a service that was forgotten and added again is dropped.
func (s *Supervisor) current(svc *service) bool { return s.services[svc.name] == svc }

func (s *Supervisor) onOrder(o Order) {
	sig, why := o.Signal, o.Why
	if why == "" {
		why = signals.Name(sig)
	}
	switch o.Action {
	case signals.Shutdown:
		if s.life.Phase != PhaseRunning {
			// The second SIGTERM/SIGINT: the operator will not wait.
			s.log.Warnf("%s during shutdown", signals.Name(sig))
			s.lifeEvent(KillOrder, Facts{})
			return
		}
		s.orderShutdown(EndSignal, sig, why)
	case signals.Reload:
		s.startReload()
	case signals.Forward:
		if s.main != nil {
			_ = s.opt.Launcher.Signal(s.main.pid, sig, s.opt.KillGroup)
			return
		}
		for _, svc := range s.order {
			if svc.pid != 0 {
				_ = s.opt.Launcher.Signal(svc.pid, sig, false)
			}
		}
	}
}
