package supervise

import (
	"fmt"
	"time"
)

// Goal is what tend intends for a service, whatever its process is doing
// now. It replaces a dozen side flags that could disagree: there is one
// goal, and the table below reads it in one place.
type Goal string

const (
	GoalRun     Goal = "run"     // keep it running as its restart policy says
	GoalHeld    Goal = "held"    // an operator stopped it: it stays stopped until started
	GoalRestart Goal = "restart" // start it again as soon as the current process is gone
	GoalRemoved Goal = "removed" // a reload removed it: forget it once its process is gone
	GoalDown    Goal = "down"    // tend is shutting down: it never starts again
)

// Ending says why the current process will end, while it is stopping.
type Ending string

const (
	EndNone   Ending = ""       // nobody asked it to end
	EndAsked  Ending = "asked"  // tend or an operator sent stop_signal: the end is clean
	EndFailed Ending = "failed" // a check failed: the end is unclean and the policy decides
)

// Event is something that happens to a service.
type Event int

const (
	Exited       Event = iota // its process ended
	DelayOver                 // the restarting or crash-loop-backoff delay ran out
	DepsReady                 // every depends_on entry is ready
	DepGaveUp                 // a dependency will not become ready by itself
	OpStart                   // operator: start
	OpStop                    // operator: stop
	OpRestart                 // operator: restart
	Removed                   // a reload removed it
	ReAdded                   // a reload put it back while its old process was still stopping
	Redefined                 // a reload changed more than its restart settings
	Reloaded                  // a reload kept it (changed or not)
	CheckFailed               // its health check failed threshold times, or it was not ready in time
	ForkFailed                // its process could not be forked (EAGAIN, EMFILE…): not its fault
	StopTimedOut              // stop_timeout ran out while it was stopping
	Shutdown                  // tend began its graceful shutdown
	ShutdownTurn              // its dependency level's turn to stop in the shutdown
	numEvents
)

var eventNames = [numEvents]string{
	"exited", "delay over", "dependencies ready", "dependency gave up", "operator start",
	"operator stop", "operator restart", "removed by reload", "re-added by reload",
	"redefined by reload", "reloaded", "check failed", "could not fork", "stop timeout",
	"shutdown", "shutdown turn",
}

func (e Event) String() string { return eventNames[e] }

func (e Event) byOperator() bool { return e == OpStart || e == OpStop || e == OpRestart }

// Action is a cell of the table: what a state does with an event.
type Action int

const (
	Ignore      Action = iota // stale or already so: nothing changes (an operator gets 200)
	Refuse                    // not in this state: an operator gets 409
	Launch                    // start the process now; a pending delay is cancelled
	Fresh                     // reset the counters, then Launch
	Judge                     // the process ended by itself: the restart machine decides
	Settle                    // a process that was asked to end has ended: the goal decides
	Resume                    // crash-loop backoff over: clear the window, start unless max_restarts
	Retry                     // could not fork: wait the backoff delay and try again, counting nothing
	StopHold                  // operator stop: ask the process to end; stay stopped after
	StopRestart               // ask the process to end; start again at once after
	StopRemove                // ask the process to end; forget the service after
	StopFailed                // ask the process to end; its end is unclean, the policy decides
	StopDown                  // shutdown: ask the process to end; stay stopped
	Hold                      // no process: cancel any delay, stopped, held by the operator
	Forget                    // no process: cancel any delay and forget the service
	GoDown                    // shutdown: cancel any delay; never start again
	Block                     // a dependency gave up: stay idle and say why
	Kill                      // stop_timeout ran out: SIGKILL the process group
	AgainAlways               // reload: an operator-held "always" service is started again
	Rehold                    // while stopping: the operator's stop wins over the reason it was stopping
	Rerestart                 // while stopping: start again as soon as it is gone
	Reremove                  // while stopping: forget it as soon as it is gone
	Unremove                  // while stopping after a removal: re-added, so start it again once gone
	Redown                    // while stopping: shutdown; stay stopped once gone
)

// table is the whole lifecycle, state by event, in the manner of
// s6-supervise. Read a row as "in this state, on this event, do this"; a
// cell not written is Ignore.
// Against SPEC section 5: Running/Exited is steps 1–6 (Judge), the
// Restarting and CrashLoopBackoff rows are steps 5–6's delays, the operator
// columns are the "Operator actions" list (start refused only in running and
// stopping; stop cancels a delay or asks the process; restart is stop then
// start; Fresh where the counters are reset), and the reload columns are its
// last paragraph together with SPEC section 8.
var table = map[State][numEvents]Action{
	Idle: {
		DepsReady: Launch, DepGaveUp: Block,
		OpStart: Fresh, OpStop: Hold, OpRestart: Fresh,
		Removed: Forget, Shutdown: GoDown,
	},
	Running: {
		Exited: Judge, ForkFailed: Retry, CheckFailed: StopFailed,
		OpStart: Refuse, OpStop: StopHold, OpRestart: StopRestart,
		Removed: StopRemove, Redefined: StopRestart,
		Shutdown: GoDown, ShutdownTurn: StopDown,
	},
	Restarting: {
		DelayOver: Launch,
		OpStart:   Launch, OpStop: Hold, OpRestart: Launch,
		Removed: Forget, Redefined: Launch, Shutdown: GoDown,
	},
	Stopping: {
		Exited: Settle, StopTimedOut: Kill,
		OpStart: Refuse, OpStop: Rehold, OpRestart: Rerestart,
		Removed: Reremove, ReAdded: Unremove, Redefined: Rerestart, Shutdown: Redown,
	},
	Stopped: {
		OpStart: Fresh, OpStop: Hold, OpRestart: Fresh,
		Removed: Forget, Reloaded: AgainAlways, Shutdown: GoDown,
	},
	CrashLoopBackoff: {
		DelayOver: Resume,
		OpStart:   Launch, OpStop: Hold, OpRestart: Launch,
		Removed: Forget, Redefined: Launch, Shutdown: GoDown,
	},
	MaxRestartsReached: {
		OpStart: Fresh, OpStop: Hold, OpRestart: Fresh,
		Removed: Forget, Shutdown: GoDown,
	},
}

// Lookup returns the table's cell for a state and an event.
func Lookup(s State, e Event) Action { return table[s][e] }

// Situation is everything a decision depends on.
type Situation struct {
	State    State
	Goal     Goal
	Ending   Ending
	Restart  Restart
	Counters Counters
	Run      Run // for Exited: the run that ended
}

// Decision is what a service does about an event. The supervisor carries
// it out: it forks, signals, arms timers and logs; decide only decides.
type Decision struct {
	Refused  string // non-empty: an operator request is refused (409); the reason follows the service's name
	Next     State
	Goal     Goal
	Ending   Ending
	Counters Counters
	Launch   bool          // start the process now
	AskStop  bool          // send stop_signal to its process group, SIGKILL after stop_timeout
	Kill     bool          // SIGKILL its process group now
	Wait     time.Duration // in Restarting or CrashLoopBackoff: the delay before DelayOver
	Forget   bool          // drop the service: it was removed and its process is gone
	Blocked  bool          // it stays idle because a dependency gave up
	Judged   bool          // the restart machine judged a run: Clean is meaningful
	Clean    bool
	Reason   string
}

// decide is the lifecycle: a pure function of the situation and the event.
func decide(s Situation, e Event) Decision {
	d := Decision{Next: s.State, Goal: s.Goal, Ending: s.Ending, Counters: s.Counters}
	if s.Goal == GoalDown {
		// Shutting down is final: nothing starts, operators are told so.
		switch {
		case e.byOperator():
			d.Refused = fmt.Sprintf("cannot %s while tend is shutting down", eventVerb(e))
			return d
		case e == Exited && s.State == Stopping:
		case e == Exited && s.State == Running:
		case e == StopTimedOut, e == ShutdownTurn:
		default:
			return d
		}
	}
	act := Lookup(s.State, e)
	switch act {
	case Ignore:
	case Refuse:
		d.Refused = fmt.Sprintf("is %s, so it cannot %s", s.State, eventVerb(e))
	case Launch, Fresh:
		if act == Fresh {
			d.Counters = Counters{}
		}
		d.Next, d.Goal, d.Ending, d.Launch = Running, GoalRun, EndNone, true
	case Judge:
		d = judge(s, d)
	case Settle:
		switch s.Goal {
		case GoalRestart:
			d.Next, d.Goal, d.Ending, d.Launch, d.Counters = Running, GoalRun, EndNone, true, Counters{}
			d.Reason = fmt.Sprintf("restarted (the old process: %s)", s.Run.Exit)
		case GoalRemoved:
			d.Next, d.Forget, d.Ending = Stopped, true, EndNone
		case GoalRun:
			if s.Ending == EndFailed {
				s.Run.Failed = true
			}
			d = judge(s, d)
			d.Ending = EndNone
		default: // held, down: the stop was asked for, so its end is clean
			d.Next, d.Ending, d.Judged, d.Clean = Stopped, EndNone, true, true
		}
	case Resume:
		var next State
		d.Counters, next = AfterCrashLoop(s.Restart, s.Counters)
		if next == MaxRestartsReached {
			d.Next, d.Reason = MaxRestartsReached, fmt.Sprintf("max_restarts %d reached", s.Restart.MaxRestarts)
		} else {
			d.Next, d.Launch = Running, true
		}
	case Retry:
		d.Next, d.Wait = Restarting, Delay(s.Restart.Backoff, s.Counters.Failures)
	case StopHold, StopRestart, StopRemove, StopFailed, StopDown:
		d.Next, d.AskStop, d.Ending = Stopping, true, EndAsked
		switch act {
		case StopHold:
			d.Goal = GoalHeld
		case StopRestart:
			d.Goal = GoalRestart
		case StopRemove:
			d.Goal = GoalRemoved
		case StopFailed:
			d.Ending = EndFailed
		case StopDown:
			d.Goal = GoalDown
		}
	case Rehold, Rerestart, Reremove, Redown:
		d.Ending = EndAsked
		d.Goal = map[Action]Goal{Rehold: GoalHeld, Rerestart: GoalRestart, Reremove: GoalRemoved, Redown: GoalDown}[act]
		if act == Rerestart && (s.Goal == GoalHeld || s.Goal == GoalRemoved) && e == Redefined {
			// A new definition does not overrule an operator's stop or a removal.
			d.Goal = s.Goal
		}
		if act == Redown && s.Goal == GoalRemoved {
			d.Goal = GoalRemoved // it is forgotten once gone, shutdown or not
		}
	case Unremove:
		if s.Goal == GoalRemoved {
			d.Goal = GoalRestart
		}
	case Kill:
		d.Kill = true
	case Hold:
		d.Next, d.Goal, d.Ending = Stopped, GoalHeld, EndNone
	case Forget:
		d.Next, d.Goal, d.Forget = Stopped, GoalRemoved, true
	case GoDown:
		d.Goal = GoalDown
		if s.State == Restarting || s.State == CrashLoopBackoff {
			d.Next, d.Judged, d.Clean = Stopped, true, true
		}
	case Block:
		d.Blocked = true
	case AgainAlways:
		// An operator's stop holds an unless-stopped service across
		// reloads; an "always" one starts again, as Docker's does when its
		// daemon restarts.
		if s.Goal == GoalHeld && s.Restart.Policy == "always" {
			d.Next, d.Goal, d.Launch, d.Counters = Running, GoalRun, true, Counters{}
		}
	}
	if d.Goal == GoalDown && d.Launch {
		// Belt and braces: no decision may start anything during shutdown.
		d.Launch, d.Next = false, Stopped
	}
	return d
}

// judge runs the restart machine over a run that ended.
func judge(s Situation, d Decision) Decision {
	var o Outcome
	d.Counters, o = AfterExit(s.Restart, s.Counters, s.Run)
	d.Next, d.Wait, d.Judged, d.Clean = o.State, o.Delay, true, o.Clean
	d.Reason = fmt.Sprintf("%s after %s uptime; %s", s.Run.Exit, round(o.Uptime), o.Reason)
	if s.Goal == GoalDown && (o.State == Restarting || o.State == CrashLoopBackoff) {
		d.Next, d.Wait = Stopped, 0
		d.Reason += "; not restarted during shutdown"
	}
	return d
}

func eventVerb(e Event) string {
	switch e {
	case OpStart:
		return "start"
	case OpStop:
		return "stop"
	case OpRestart:
		return "restart"
	}
	return e.String()
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}
