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

// Ending says why the current run will end, while it is stopping.
type Ending string

const (
	EndNone     Ending = ""         // nobody asked it to end
	EndAsked    Ending = "asked"    // tend or an operator sent stop_signal: the end is clean
	EndFailed   Ending = "failed"   // a check failed: the end is unclean and the policy decides
	EndLeftover Ending = "leftover" // its main process ended by itself; the rest are being stopped, then the main process's exit is judged
)

// Event is something that happens to a service.
type Event int

const (
	Exited       Event = iota // its run is over: the main process ended and nothing else of it is left
	MainGone                  // its main process ended, and other processes of the run are still alive
	Emptied                   // the last process of a run whose main process had ended is gone
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
	StartFailed               // a launch found its program cannot run (not found, not executable): 127 or 126
	ForkFailed                // a launch could not fork (EAGAIN, EMFILE…): not its fault
	StopTimedOut              // stop_timeout ran out while it was stopping
	Shutdown                  // tend began its graceful shutdown
	ShutdownTurn              // its dependency level's turn to stop in the shutdown
	numEvents
)

var eventNames = [numEvents]string{
	"exited", "main process gone", "last process gone", "delay over", "dependencies ready",
	"dependency gave up", "operator start", "operator stop", "operator restart", "removed by reload",
	"re-added by reload", "redefined by reload", "reloaded", "check failed", "could not start",
	"could not fork", "stop timeout", "shutdown", "shutdown turn",
}

func (e Event) String() string { return eventNames[e] }

func (e Event) byOperator() bool { return e == OpStart || e == OpStop || e == OpRestart }

// Reaction is what a state does with an event (a signals.Action is what
// tend does with a signal; the two never meet).
type Reaction int

const (
	Ignore      Reaction = iota // stale or already so: nothing changes (an operator gets 200)
	Refuse                      // not in this state: an operator gets 409
	Launch                      // start the process now; a pending delay is cancelled
	Fresh                       // reset the counters, then Launch
	Judge                       // the run ended by itself: the restart machine decides
	JudgeStart                  // the launch found the program cannot run: judged as a run that ended at once
	Drain                       // the main process ended by itself, others are left: stop them, judge once they are gone
	Settle                      // a run that was asked to end is over: the goal decides
	Resume                      // crash-loop backoff over: clear the window, start unless max_restarts
	Retry                       // could not fork: wait the backoff delay and try again, counting nothing
	Stop                        // ask every process of the run to end; the cell's goal says what comes after
	StopFailed                  // ask every process to end; its end is unclean, the policy decides
	Regoal                      // while stopping: what comes after is now the cell's goal
	Hold                        // no process: cancel any delay, stopped, held by the operator
	Forget                      // no process: cancel any delay and forget the service
	GoDown                      // shutdown: cancel any delay; never start again
	Block                       // a dependency gave up: stay idle and say why
	Kill                        // stop_timeout ran out: SIGKILL every process of the run
	AgainAlways                 // reload: an operator-held "always" service is started again
)

// Cell is one entry of the table: the reaction, and for Stop and Regoal the
// goal it sets.
type Cell struct {
	Do   Reaction
	Goal Goal
}

// Shorthands that keep the table readable.
var (
	refuse      = Cell{Do: Refuse}
	launch      = Cell{Do: Launch}
	fresh       = Cell{Do: Fresh}
	hold        = Cell{Do: Hold}
	forget      = Cell{Do: Forget}
	goDown      = Cell{Do: GoDown}
	retry       = Cell{Do: Retry}
	judgeStart  = Cell{Do: JudgeStart}
	settle      = Cell{Do: Settle}
	stopHeld    = Cell{Do: Stop, Goal: GoalHeld}
	stopRestart = Cell{Do: Stop, Goal: GoalRestart}
	stopRemoved = Cell{Do: Stop, Goal: GoalRemoved}
	stopDown    = Cell{Do: Stop, Goal: GoalDown}
	nowHeld     = Cell{Do: Regoal, Goal: GoalHeld}
	nowRestart  = Cell{Do: Regoal, Goal: GoalRestart}
	nowRemoved  = Cell{Do: Regoal, Goal: GoalRemoved}
	nowDown     = Cell{Do: Regoal, Goal: GoalDown}
)

// table is the whole lifecycle, state by event, in the manner of
// s6-supervise. Read a row as "in this state, on this event, do this"; a
// cell not written is Ignore. Every state that launches (a Launch, Fresh,
// Resume, AgainAlways or a Settle that restarts) has its StartFailed and
// ForkFailed cells: a launch that fails is decided in the state the
// service was in, never by pretending it ran.
// Against SPEC section 5: Running/Exited is steps 1–6 (Judge), the
// Restarting and CrashLoopBackoff rows are steps 5–6's delays, the operator
// columns are the "Operator actions" list (start refused only in running and
// stopping; stop cancels a delay or asks the process; restart is stop then
// start; Fresh where the counters are reset), and the reload columns are its
// last paragraph together with SPEC section 8. Against SPEC section 6: a run
// is every process it started, so Running/MainGone drains the rest before
// the judgement, and Stopping waits for Exited or Emptied, not for the main
// process alone.
var table = map[State][numEvents]Cell{
	Idle: {
		DepsReady: launch, DepGaveUp: {Do: Block},
		OpStart: fresh, OpStop: hold, OpRestart: fresh,
		Removed: forget, Shutdown: goDown,
		StartFailed: judgeStart, ForkFailed: retry,
	},
	Running: {
		Exited: {Do: Judge}, MainGone: {Do: Drain}, CheckFailed: {Do: StopFailed},
		OpStart: refuse, OpStop: stopHeld, OpRestart: stopRestart,
		Removed: stopRemoved, Redefined: stopRestart,
		Shutdown: goDown, ShutdownTurn: stopDown,
	},
	Restarting: {
		DelayOver: launch,
		OpStart:   launch, OpStop: hold, OpRestart: launch,
		Removed: forget, Redefined: launch, Shutdown: goDown,
		StartFailed: judgeStart, ForkFailed: retry,
	},
	Stopping: {
		Exited: settle, Emptied: settle, StopTimedOut: {Do: Kill},
		OpStart: refuse, OpStop: nowHeld, OpRestart: nowRestart,
		Removed: nowRemoved, ReAdded: nowRestart, Redefined: nowRestart, Shutdown: nowDown,
		StartFailed: judgeStart, ForkFailed: retry,
	},
	Stopped: {
		OpStart: fresh, OpStop: hold, OpRestart: fresh,
		Removed: forget, Reloaded: {Do: AgainAlways}, Shutdown: goDown,
		StartFailed: judgeStart, ForkFailed: retry,
	},
	CrashLoopBackoff: {
		DelayOver: {Do: Resume},
		OpStart:   launch, OpStop: hold, OpRestart: launch,
		Removed: forget, Redefined: launch, Shutdown: goDown,
		StartFailed: judgeStart, ForkFailed: retry,
	},
	MaxRestartsReached: {
		OpStart: fresh, OpStop: hold, OpRestart: fresh,
		Removed: forget, Shutdown: goDown,
		StartFailed: judgeStart, ForkFailed: retry,
	},
}

// Lookup returns the table's cell for a state and an event.
func Lookup(s State, e Event) Cell { return table[s][e] }

// Situation is everything a decision depends on.
type Situation struct {
	State    State
	Goal     Goal
	Ending   Ending
	Manual   bool // autostart = false: it starts only when an operator starts it
	Restart  Restart
	Counters Counters
	Run      Run // for Exited, Emptied, StartFailed: the run that ended
	Left     int // for MainGone: how many processes of the run are still alive
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
	AskStop  bool          // send stop_signal to every process of the run, SIGKILL after stop_timeout
	Kill     bool          // SIGKILL every process of the run now
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
		case e == Exited || e == MainGone || e == Emptied:
		case e == StartFailed || e == ForkFailed:
		case e == StopTimedOut, e == ShutdownTurn:
		default:
			return d
		}
	}
	if s.State == Idle && s.Goal == GoalHeld && e == DepsReady {
		// autostart = false: defined and startable, but only an operator
		// starts it (s6's down file, supervisord's autostart=false).
		return d
	}
	cell := Lookup(s.State, e)
	switch cell.Do {
	case Ignore:
	case Refuse:
		d.Refused = fmt.Sprintf("is %s, so it cannot %s", s.State, eventVerb(e))
	case Launch, Fresh:
		if cell.Do == Fresh {
			d.Counters = Counters{}
		}
		d.Next, d.Goal, d.Ending, d.Launch = Running, GoalRun, EndNone, true
	case Judge:
		d = judge(s, d)
	case JudgeStart:
		d = judge(s, d)
		d.Ending = EndNone
		if d.Goal == GoalRestart {
			d.Goal = GoalRun
		}
	case Drain:
		d.Next, d.AskStop, d.Ending = Stopping, true, EndLeftover
		d.Reason = fmt.Sprintf("%d %s left after its main process ended (%s)", s.Left, plural(s.Left, "process", "processes"), s.Run.Exit)
	case Settle:
		switch s.Goal {
		case GoalRestart:
			d.Next, d.Goal, d.Ending, d.Launch, d.Counters = Running, GoalRun, EndNone, true, Counters{}
			d.Reason = fmt.Sprintf("restarted (the old process: %s)", s.Run.Exit)
		case GoalRemoved:
			d.Next, d.Forget, d.Ending = Stopped, true, EndNone
		case GoalRun, GoalDown:
			if s.Goal == GoalDown && s.Ending != EndLeftover {
				// The shutdown asked it to stop: its end is clean.
				d.Next, d.Ending, d.Judged, d.Clean = Stopped, EndNone, true, true
				break
			}
			if s.Ending == EndFailed {
				s.Run.Failed = true
			}
			d = judge(s, d)
			d.Ending = EndNone
		default: // held: an operator asked for the stop, so its end is clean
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
		d.Next, d.Wait, d.Ending = Restarting, Delay(s.Restart.Backoff, s.Counters.Failures), EndNone
		if d.Goal == GoalRestart {
			d.Goal = GoalRun
		}
	case Stop, StopFailed:
		d.Next, d.AskStop, d.Ending = Stopping, true, EndAsked
		if cell.Do == StopFailed {
			d.Ending = EndFailed
		} else {
			d.Goal = cell.Goal
		}
	case Regoal:
		d.Ending = EndAsked
		d.Goal = cell.Goal
		switch {
		case e == Redefined && (s.Goal == GoalHeld || s.Goal == GoalRemoved):
			d.Goal = s.Goal // a new definition does not overrule an operator's stop or a removal
		case e == ReAdded && s.Goal != GoalRemoved:
			d.Goal, d.Ending = s.Goal, s.Ending // only a removal is undone by adding it again
		case e == ReAdded && s.Manual:
			d.Goal = GoalHeld // added again, as a new service is: it waits for an operator
		case cell.Goal == GoalDown && s.Goal == GoalRemoved:
			d.Goal = GoalRemoved // it is forgotten once gone, shutdown or not
		case cell.Goal == GoalDown && s.Ending == EndLeftover:
			d.Ending = s.Ending // its main process ended by itself before the shutdown: still judged
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

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
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
