package supervise

import (
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/tree"
)

// service is the supervisor's record of one service. Only the supervisor's
// goroutine touches it. Its lifecycle is state, goal and ending, changed
// only by carryOut from a decision of the table in lifecycle.go; the rest
// is what the current or the last process left behind.
type service struct {
	name     string
	spec     *config.Service // the definition in force: for the next start and the next exit's judgement
	state    State
	goal     Goal
	ending   Ending
	since    time.Time
	level    int // depth in the dependency graph
	counters Counters
	blocked  string // why it is idle: a dependency gave up

	// The current run, if any: run != nil while any process of it lives,
	// pid != 0 while its main process does.
	run      ServiceRun
	pid      int
	runSpec  *config.Service // the definition it was started with: its stop_signal and stop_timeout
	runEnv   []string        // the environment it was started with (env files as read then), for its exec checks
	stopPid  int             // its stop_command while one runs; not a process of the run
	started  time.Time
	output   *runOutput     // its output pumps; told when the run is over
	tracking tree.Mechanism // how its processes are found (of the last run)
	cgroup   string
	limits   tree.Applied // what became of its cgroup limits (of the last run)
	warned   string       // the not-applied limits last warned of, so a restart does not repeat it

	starts    int // processes started, ever: a counter for the metrics
	lastExit  *reaper.Exit
	lastClean bool   // its last run ended cleanly, or was stopped on request
	startErr  string // why its last start failed before any process ran; "" once one runs
	succeeded bool   // a oneshot whose run exited cleanly

	timer *time.Timer // the pending delay or stop timeout
	gen   int         // tells a timer of an earlier delay from the current one

	// Checks. checkGen changes whenever a run starts or ends, so results
	// and timers of an earlier run are recognised and dropped.
	ready        bool // the readiness check passed (or there is none), and has not failed threshold times since
	readyOnce    bool // ready was reached in this run: health probing has begun, ready_timeout is over
	readyFails   int
	healthy      bool // the health check has not failed threshold times
	healthFails  int
	checkGen     int
	probes       [2]probeSlot // by checkKind.slot(): readiness keeps probing beside health
	readyTimer   *time.Timer
	notify       *notifySocket
	notifyStatus string
}

// probeSlot is one kind of check's next probe, or the one in flight.
type probeSlot struct {
	timer  *time.Timer
	cancel func()
}

// newService: idle, and held when autostart = false (it waits for an
// operator; the table never launches a held idle service by itself).
func newService(spec *config.Service) *service {
	goal := GoalRun
	if spec.Manual {
		goal = GoalHeld
	}
	return &service{name: spec.Name, spec: spec, state: Idle, goal: goal}
}

// waitsForOperator: defined, visible and startable, but not started by
// tend (autostart = false) until an operator does.
func (svc *service) waitsForOperator() bool {
	return svc.state == Idle && svc.goal == GoalHeld && svc.blocked == ""
}

func (svc *service) logger(log *logrus.Logger) *logrus.Entry {
	return log.WithField("service", svc.name)
}

// situation is what decide needs to know of the service.
func (svc *service) situation() Situation {
	return Situation{
		State:    svc.state,
		Goal:     svc.goal,
		Ending:   svc.ending,
		Restart:  RestartOf(svc.spec),
		Manual:   svc.spec.Manual,
		Counters: svc.counters,
	}
}

func (svc *service) cancelTimer() {
	if svc.timer != nil {
		svc.timer.Stop()
		svc.timer = nil
	}
	svc.gen++
}

// isReady: a oneshot once it exited cleanly; any other service once it
// runs and its readiness check, if any, passed.
func (svc *service) isReady() bool {
	if svc.spec.Oneshot {
		return svc.succeeded
	}
	return svc.state == Running && svc.ready
}

// gaveUp: it will not run again by itself and is not ready, or it was
// never started because its own dependency gave up.
func (svc *service) gaveUp() bool {
	switch svc.state {
	case MaxRestartsReached:
		return true
	case Stopped:
		return !svc.isReady()
	case Idle:
		return svc.blocked != ""
	}
	return false
}

// notGood says why the service is not in a good state: running, ready
// and healthy, or a oneshot that succeeded; "" when it is.
func (svc *service) notGood() string {
	switch {
	case svc.spec.Oneshot && svc.succeeded:
	case svc.state == Running && svc.isReady() && svc.healthy:
	case svc.state == Running && !svc.isReady():
		return svc.name + " is not ready"
	case svc.state == Running:
		return svc.name + " is unhealthy"
	case svc.state == Idle && svc.blocked == "" && len(svc.spec.DependsOn) > 0:
		return fmt.Sprintf("%s is idle, waiting for %s to be ready", svc.name, strings.Join(svc.spec.DependsOn, ", "))
	default:
		return fmt.Sprintf("%s is %s", svc.name, svc.describe())
	}
	return ""
}

func (svc *service) gaveUpReason() string {
	if svc.state == Idle && svc.blocked != "" {
		return "was not started"
	}
	if svc.lastExit != nil {
		return fmt.Sprintf("is %s (%s)", svc.state, svc.lastExit)
	}
	return "is " + string(svc.state)
}

// final: it ended by itself and nothing will start it again without an
// operator. A service an operator stopped is not final: what an operator
// does never ends tend.
func (svc *service) final() bool {
	if svc.goal != GoalRun && svc.goal != GoalDown {
		return false
	}
	switch svc.state {
	case Stopped, MaxRestartsReached:
		return true
	case Idle:
		return svc.blocked != ""
	}
	return false
}

// endedClean: its last run was clean, or it was stopped on request.
func (svc *service) endedClean() bool {
	switch svc.state {
	case Stopped:
		return svc.lastClean || svc.goal == GoalHeld
	case Idle:
		return svc.blocked == ""
	}
	return false
}

func (svc *service) describe() string {
	switch {
	case svc.state == Idle && svc.blocked != "":
		return "not started: " + svc.blocked
	case svc.waitsForOperator():
		return "idle: autostart = false (tend ctl start " + svc.name + ")"
	case svc.lastExit != nil:
		return fmt.Sprintf("%s, last %s", svc.state, svc.lastExit)
	}
	return string(svc.state)
}

// cancelChecks forgets everything of the current run's checks: pending
// timers, and a probe in flight (an exec check's process group is killed).
func (svc *service) cancelChecks() {
	svc.checkGen++
	if svc.readyTimer != nil {
		svc.readyTimer.Stop()
		svc.readyTimer = nil
	}
	for i := range svc.probes {
		p := &svc.probes[i]
		if p.timer != nil {
			p.timer.Stop()
		}
		if p.cancel != nil {
			p.cancel()
		}
		*p = probeSlot{}
	}
}
