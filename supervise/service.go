package supervise

import (
	"fmt"
	"os"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/reaper"
)

// service is the supervisor's record of one service. Only the supervisor's
// goroutine touches it.
type service struct {
	spec     *config.Service
	state    State
	since    time.Time
	level    int // depth in the dependency graph
	counters Counters

	pid       int
	started   time.Time
	lastExit  *reaper.Exit
	lastClean bool
	succeeded bool // a oneshot that exited cleanly
	runFailed bool // tend ended this run for a failed check: unclean

	timer            *time.Timer
	gen              int    // invalidates timers that fired after being replaced
	stoppedByTend    bool   // the last stop was asked for, so its end is clean
	restartAfterStop bool   // an operator restart: start again once stopped
	heldByOperator   bool   // stopped by an operator; unless-stopped keeps it so
	blocked          string // why it was never started (a dependency gave up)
	retired          bool   // removed by a reload; forgotten once stopped

	// Checks. checkGen changes whenever a run starts or ends, so results
	// and timers of an earlier run are recognised and dropped.
	ready        bool // the readiness check passed (or there is none)
	healthy      bool // the health check has not failed threshold times
	healthFails  int
	checkGen     int
	probeTimer   *time.Timer
	cancelProbe  func()
	readyTimer   *time.Timer
	failing      bool // tend is stopping this run for a failed check
	notify       *notifySocket
	notifyStatus string
}

func newService(spec *config.Service) *service {
	return &service{spec: spec, state: Idle}
}

func (svc *service) logger(log *logrus.Logger) *logrus.Entry {
	return log.WithField("service", svc.spec.Name)
}

func (svc *service) cancelTimer() {
	if svc.timer != nil {
		svc.timer.Stop()
		svc.timer = nil
	}
	svc.gen++
}

// reset clears the counters, as a start from stopped, idle or
// max-restarts-reached does.
func (svc *service) reset() { svc.counters = Counters{} }

// isReady: a oneshot once it exited cleanly; any other service once it
// runs and its readiness check, if any, passed.
func (svc *service) isReady() bool {
	if svc.spec.Oneshot {
		return svc.succeeded
	}
	return svc.state == Running && svc.ready
}

// cancelChecks forgets everything of the current run's checks: pending
// timers, and a probe in flight (an exec check's process group is killed).
func (svc *service) cancelChecks() {
	svc.checkGen++
	for _, t := range []*time.Timer{svc.probeTimer, svc.readyTimer} {
		if t != nil {
			t.Stop()
		}
	}
	svc.probeTimer, svc.readyTimer = nil, nil
	if svc.cancelProbe != nil {
		svc.cancelProbe()
		svc.cancelProbe = nil
	}
}

// gaveUp: it will not run again by itself and is not ready.
func (svc *service) gaveUp() bool {
	switch svc.state {
	case MaxRestartsReached:
		return true
	case Stopped:
		return !svc.isReady() && !(svc.spec.Oneshot && svc.succeeded)
	}
	return false
}

func (svc *service) gaveUpReason() string {
	if svc.lastExit != nil {
		return fmt.Sprintf("is %s (%s)", svc.state, svc.lastExit)
	}
	return "is " + string(svc.state)
}

// endedClean: its last run was clean, or it was stopped on request.
func (svc *service) endedClean() bool {
	switch svc.state {
	case Stopped:
		return svc.lastClean || svc.stoppedByTend
	case Idle:
		return svc.heldByOperator
	}
	return false
}

func (svc *service) describe() string {
	switch {
	case svc.blocked != "":
		return "not started: " + svc.blocked
	case svc.lastExit != nil:
		return fmt.Sprintf("%s, last %s", svc.state, svc.lastExit)
	}
	return string(svc.state)
}

// outputFiles are a run's stdin, stdout and stderr: the child's ends and,
// for "prefix", the ends tend reads.
type outputFiles struct {
	child  [3]*os.File
	parent [2]*os.File // read ends of stdout and stderr pipes, prefix only
	shared bool        // child[1..2] are tend's own; never close them
}

func (s *Supervisor) outputFiles(svc *service) (*outputFiles, error) {
	f := &outputFiles{}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	f.child[0] = devnull
	switch out := svc.spec.Output; out {
	case "inherit":
		f.child[1], f.child[2], f.shared = os.Stdout, os.Stderr, true
	case "prefix", "":
		for i := range 2 {
			r, w, err := os.Pipe()
			if err != nil {
				f.closeChildEnds()
				f.closeParentEnds()
				return nil, err
			}
			f.parent[i], f.child[i+1] = r, w
		}
	default:
		file, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			devnull.Close()
			return nil, err
		}
		f.child[1], f.child[2] = file, file
	}
	return f, nil
}

func (f *outputFiles) fds() []uintptr {
	return []uintptr{f.child[0].Fd(), f.child[1].Fd(), f.child[2].Fd()}
}

// closeChildEnds closes tend's copies of what the child got, so that the
// pipes reach EOF when the child and its descendants are done with them.
func (f *outputFiles) closeChildEnds() {
	f.child[0].Close()
	if f.shared {
		return
	}
	seen := map[*os.File]bool{}
	for _, c := range f.child[1:] {
		if c != nil && !seen[c] {
			seen[c] = true
			c.Close()
		}
	}
}

func (f *outputFiles) closeParentEnds() {
	for _, p := range f.parent {
		if p != nil {
			p.Close()
		}
	}
}

func (f *outputFiles) pump(sink *Sink, name string) {
	if f.parent[0] == nil {
		return
	}
	sink.Pump(name, "stdout", f.parent[0])
	sink.Pump(name, "stderr", f.parent[1])
}
