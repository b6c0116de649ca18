package supervise

import (
	"testing"
	"time"

	"github.com/tend-init/tend/config"
)

// TestDecide walks the table cell by cell where SPEC section 5 and the
// interleavings that once went wrong say what must happen.
func TestDecide(t *testing.T) {
	type want struct {
		next    State
		goal    Goal
		launch  bool
		askStop bool
		refused bool
		forget  bool
	}
	cases := []struct {
		name   string
		state  State
		goal   Goal
		ending Ending
		ev     Event
		want   want
	}{
		{"start refused while running", Running, GoalRun, EndNone, OpStart, want{next: Running, goal: GoalRun, refused: true}},
		{"start refused while stopping", Stopping, GoalHeld, EndAsked, OpStart, want{next: Stopping, goal: GoalHeld, refused: true}},
		{"start from stopped", Stopped, GoalHeld, EndNone, OpStart, want{next: Running, goal: GoalRun, launch: true}},
		{"start cancels a pending restart", Restarting, GoalRun, EndNone, OpStart, want{next: Running, goal: GoalRun, launch: true}},
		{"stop while running", Running, GoalRun, EndNone, OpStop, want{next: Stopping, goal: GoalHeld, askStop: true}},
		{"stop cancels a delay", CrashLoopBackoff, GoalRun, EndNone, OpStop, want{next: Stopped, goal: GoalHeld}},
		{"stop wins over a failed check", Stopping, GoalRun, EndFailed, OpStop, want{next: Stopping, goal: GoalHeld}},
		{"stop wins over a pending restart", Stopping, GoalRestart, EndAsked, OpStop, want{next: Stopping, goal: GoalHeld}},
		{"restart while running", Running, GoalRun, EndNone, OpRestart, want{next: Stopping, goal: GoalRestart, askStop: true}},
		{"restart while stopping", Stopping, GoalHeld, EndAsked, OpRestart, want{next: Stopping, goal: GoalRestart}},
		{"held: exit stays stopped", Stopping, GoalHeld, EndAsked, Exited, want{next: Stopped, goal: GoalHeld}},
		{"restart: exit starts again", Stopping, GoalRestart, EndAsked, Exited, want{next: Running, goal: GoalRun, launch: true}},
		{"removed: exit forgets", Stopping, GoalRemoved, EndAsked, Exited, want{next: Stopped, goal: GoalRemoved, forget: true}},
		{"removed while running", Running, GoalRun, EndNone, Removed, want{next: Stopping, goal: GoalRemoved, askStop: true}},
		{"removed without a process", Restarting, GoalRun, EndNone, Removed, want{next: Stopped, goal: GoalRemoved, forget: true}},
		{"re-added while stopping", Stopping, GoalRemoved, EndAsked, ReAdded, want{next: Stopping, goal: GoalRestart}},
		{"redefinition keeps a removal", Stopping, GoalRemoved, EndAsked, Redefined, want{next: Stopping, goal: GoalRemoved}},
		{"redefinition keeps an operator's stop", Stopping, GoalHeld, EndAsked, Redefined, want{next: Stopping, goal: GoalHeld}},
		{"redefinition restarts a running service", Running, GoalRun, EndNone, Redefined, want{next: Stopping, goal: GoalRestart, askStop: true}},
		{"failed check stops, policy decides", Running, GoalRun, EndNone, CheckFailed, want{next: Stopping, goal: GoalRun, askStop: true}},
		{"failed fork waits", Restarting, GoalRun, EndNone, ForkFailed, want{next: Restarting, goal: GoalRun}},
		{"failed fork of a fresh start waits", Stopped, GoalRun, EndNone, ForkFailed, want{next: Restarting, goal: GoalRun}},
		{"failed fork of a restart waits", Stopping, GoalRun, EndNone, ForkFailed, want{next: Restarting, goal: GoalRun}},
		{"a program that cannot run is judged", Idle, GoalRun, EndNone, StartFailed, want{next: Restarting, goal: GoalRun}},
		{"main process gone, others left: stop them", Running, GoalRun, EndNone, MainGone, want{next: Stopping, goal: GoalRun, askStop: true}},
		{"stopping: main process gone, others left: wait", Stopping, GoalHeld, EndAsked, MainGone, want{next: Stopping, goal: GoalHeld}},
		{"stopping: the last process gone", Stopping, GoalHeld, EndAsked, Emptied, want{next: Stopped, goal: GoalHeld}},
		{"leftovers gone: the main exit is judged", Stopping, GoalRun, EndLeftover, Emptied, want{next: Restarting, goal: GoalRun}},
		{"leftovers gone during shutdown: not restarted", Stopping, GoalDown, EndLeftover, Emptied, want{next: Stopped, goal: GoalDown}},
		{"operator stop while leftovers drain", Stopping, GoalRun, EndLeftover, OpStop, want{next: Stopping, goal: GoalHeld}},
		{"shutdown cancels a delay", Restarting, GoalRun, EndNone, Shutdown, want{next: Stopped, goal: GoalDown}},
		{"shutdown waits for the level's turn", Running, GoalRun, EndNone, Shutdown, want{next: Running, goal: GoalDown}},
		{"the level's turn", Running, GoalDown, EndNone, ShutdownTurn, want{next: Stopping, goal: GoalDown, askStop: true}},
		{"no operator during shutdown", Stopped, GoalDown, EndNone, OpStart, want{next: Stopped, goal: GoalDown, refused: true}},
		{"a removal survives the shutdown", Stopping, GoalRemoved, EndAsked, Shutdown, want{next: Stopping, goal: GoalRemoved}},
		{"stale exit", Restarting, GoalRun, EndNone, Exited, want{next: Restarting, goal: GoalRun}},
		{"stale delay", Running, GoalRun, EndNone, DelayOver, want{next: Running, goal: GoalRun}},
		{"reload starts a held always service", Stopped, GoalHeld, EndNone, Reloaded, want{next: Running, goal: GoalRun, launch: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sit := Situation{State: c.state, Goal: c.goal, Ending: c.ending, Restart: defaults()}
			sit.Run = run(t0, time.Minute, exitCode(0))
			d := decide(sit, c.ev)
			got := want{next: d.Next, goal: d.Goal, launch: d.Launch, askStop: d.AskStop, refused: d.Refused != "", forget: d.Forget}
			if got != c.want {
				t.Fatalf("%s in %s (goal %s) on %s:\n got %+v\nwant %+v", c.name, c.state, c.goal, c.ev, got, c.want)
			}
		})
	}
}

func TestDecideJudgesFailedChecksUnclean(t *testing.T) {
	r := defaults()
	r.Policy = config.PolicyOnFailure
	sit := Situation{State: Stopping, Goal: GoalRun, Ending: EndFailed, Restart: r, Run: run(t0, time.Minute, exitCode(0))}
	if d := decide(sit, Exited); d.Next != Restarting || d.Clean {
		t.Fatalf("a run ended for a failed check: %s, clean %v; want restarting, unclean", d.Next, d.Clean)
	}
	sit.Ending = EndAsked
	sit.Goal = GoalHeld
	if d := decide(sit, Exited); d.Next != Stopped || !d.Clean {
		t.Fatalf("a run an operator stopped: %s, clean %v; want stopped, clean", d.Next, d.Clean)
	}
}

// Every state has a row, and every cell names an action the decision knows.
func TestTableIsComplete(t *testing.T) {
	for _, s := range allStates {
		if _, ok := table[s]; !ok {
			t.Errorf("no row for %s", s)
		}
	}
	if len(table) != len(allStates) {
		t.Errorf("%d rows for %d states", len(table), len(allStates))
	}
	// Total: a state with a cell that may launch has the cells for a
	// launch that fails, so launch never has to pretend a process ran.
	for st, row := range table {
		launches := false
		for _, c := range row {
			switch c.Do {
			case Launch, Fresh, Resume, AgainAlways, Settle:
				launches = true
			}
		}
		if launches && (row[StartFailed].Do != JudgeStart || row[ForkFailed].Do != Retry) {
			t.Errorf("%s may launch, and has no StartFailed/ForkFailed cells", st)
		}
	}
}
