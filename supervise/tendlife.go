package supervise

import (
	"fmt"
	"time"
)

// tend's own lifecycle, as the services' is in lifecycle.go: a state (the
// main program's and the shutdown's), events, and one pure function that
// decides. The supervisor feeds it and carries out the effects; it is the
// only writer of tend's exit status and the only place that decides what
// an essential service's end means for tend.

// MainState is where the main program (after --) is.
type MainState string

const (
	MainNone     MainState = "none"            // tend was given no main program
	MainWaiting  MainState = "waiting"         // for every service to be ready
	MainRunning  MainState = "running"         // started, not ended
	MainEnded    MainState = "ended"           // it ran and exited
	MainNotStart MainState = "could not start" // its start failed: it never ran
)

// Phase is where tend is in its life.
type Phase string

const (
	PhaseRunning   Phase = "running"                   // supervising
	PhaseMain      Phase = "stopping the main program" // the shutdown's first step
	PhaseLevels    Phase = "stopping services"         // one dependency level at a time, deepest first
	PhaseLeftovers Phase = "stopping leftovers"        // every process left (adopted orphans)
	PhaseDone      Phase = "done"                      // Run returns the exit status
)

// Life is tend's own state.
type Life struct {
	Main   MainState
	Phase  Phase
	Level  int       // in PhaseLevels: the level being stopped
	Code   int       // the exit status, once Set
	Set    bool      // the status is decided
	ByMain bool      // the main program decided it: nothing else may change it
	Reason EndReason // why tend ends, once it does
}

// LifeEvent is something that happens to tend as a whole.
type LifeEvent int

const (
	AllReady        LifeEvent = iota // every service is ready
	MainStarted                      // the main program runs
	MainStartFailed                  // the main program could not be started (Code: 127, 126…)
	MainExited                       // the main program ended (Code: its status, remapped)
	ReadyTimedOut                    // ready_timeout ran out with services not ready
	EssentialEnded                   // an essential service gave up (Code: its status)
	CheckShutdown                    // a health check with on_failure = shutdown failed
	ShutdownOrder                    // SIGTERM, SIGINT, tend ctl shutdown, a panic (Reason, Code for a panic)
	KillOrder                        // the second SIGTERM or SIGINT during the shutdown
	DeadlinePassed                   // shutdown_timeout ran out
	Settled                          // every service ended by itself (Code: 0 if all cleanly, else 1)
	Progress                         // something stopped: Facts say what is still alive
	LeftoversGone                    // the last adopted orphan is gone
)

var lifeEventNames = [...]string{
	"every service ready", "main program started", "main program could not start",
	"main program ended", "ready_timeout", "essential service gave up", "health check shutdown", "shutdown order",
	"kill order", "shutdown_timeout", "every service ended", "progress", "leftovers gone",
}

func (e LifeEvent) String() string { return lifeEventNames[e] }

// Facts are what a LifeEvent brings.
type Facts struct {
	Code   int       // the status the event carries, if any
	Reason EndReason // for ShutdownOrder
	// For Progress: is the main program alive, and the deepest dependency
	// level that still has a process (-1: none).
	MainAlive   bool
	HighestLive int
	Clean       int           // for Progress reaching the end: 0 if every service ended cleanly, else 1
	Limit       time.Duration // for DeadlinePassed: shutdown_timeout, for the log
}

// LifeEffects are what the supervisor does for a decision.
type LifeEffects struct {
	StartMain   bool // start the main program
	BeginStop   bool // the shutdown begins: cancel delays, arm shutdown_timeout
	SignalMain  bool // send the main program its shutdown signal
	StopLevel   bool // stop every service of Life.Level
	KillAll     bool // SIGKILL everything at once
	Leftovers   bool // stop every process left
	Log         string
	EssentialUp bool // an essential service's end ended tend (log it)
}

// decideLife is tend's lifecycle: a pure function of its state, an event
// and the facts that came with it.
func decideLife(l Life, e LifeEvent, f Facts) (Life, LifeEffects) {
	var fx LifeEffects
	running := l.Phase == PhaseRunning
	begin := func(reason EndReason) {
		if !running {
			return
		}
		l.Phase, l.Reason, fx.BeginStop = PhaseMain, reason, true
		if l.Main == MainRunning {
			fx.SignalMain = true
		}
		running = false
	}
	status := func(code int) { // the first decision wins, unless the main program's
		if !l.Set {
			l.Code, l.Set = code, true
		}
	}
	switch e {
	case AllReady:
		if running && l.Main == MainWaiting {
			fx.StartMain = true
		}
	case MainStarted:
		l.Main = MainRunning
	case MainStartFailed, MainExited:
		// The main program decides tend's status, even over an essential
		// service that gave up first.
		l.Code, l.Set, l.ByMain = f.Code, true, true
		if e == MainStartFailed {
			l.Main = MainNotStart
		} else {
			l.Main = MainEnded
		}
		begin(EndMain)
	case ReadyTimedOut:
		if running && l.Main == MainWaiting {
			status(1)
			begin(EndNotReady)
		}
	case EssentialEnded:
		if running {
			status(f.Code)
			fx.EssentialUp = true
			begin(EndEssential)
		}
	case CheckShutdown:
		// Pebble's on-check-failure: shutdown; the check says nothing of
		// an exit status, so it is 1 (the main program's still wins).
		status(1)
		begin(EndCheck)
	case ShutdownOrder:
		if f.Reason == EndPanic {
			status(1)
		}
		begin(f.Reason)
	case KillOrder:
		if !running && l.Phase != PhaseDone {
			fx.KillAll, fx.Log = true, "killing everything now"
		}
	case DeadlinePassed:
		if l.Phase == PhaseMain || l.Phase == PhaseLevels {
			fx.KillAll, fx.Log = true, fmt.Sprintf("shutdown_timeout %s expired: killing everything", f.Limit)
		}
	case Settled:
		// Nothing runs, nothing will: no main program to wait for.
		if running && (l.Main == MainNone || l.Main == MainEnded || l.Main == MainNotStart) {
			status(f.Code)
			l.Phase, l.Reason = PhaseDone, EndSettled
		}
	case Progress:
		switch {
		case l.Phase == PhaseMain && !f.MainAlive:
			l.Phase, l.Level = PhaseLevels, -1
			fallthrough
		case l.Phase == PhaseLevels:
			if f.HighestLive < 0 {
				status(f.Clean)
				l.Phase, fx.Leftovers = PhaseLeftovers, true
				fx.Log = fmt.Sprintf("every service stopped; exit status %d", l.Code)
			} else if f.HighestLive != l.Level {
				l.Level, fx.StopLevel = f.HighestLive, true
				fx.Log = fmt.Sprintf("stopping dependency level %d", l.Level)
			}
		}
	case LeftoversGone:
		if l.Phase == PhaseLeftovers {
			l.Phase = PhaseDone
		}
	}
	return l, fx
}
