package supervise

import (
	"testing"
	"time"
)

// TestDecideLife walks tend's own lifecycle through the cases SPEC section
// 6 names, and the ones that once went wrong.
func TestDecideLife(t *testing.T) {
	running := func(m MainState) Life { return Life{Main: m, Phase: PhaseRunning} }
	cases := []struct {
		name  string
		life  Life
		ev    LifeEvent
		facts Facts
		want  Life
		fx    LifeEffects
	}{
		{"ready: the main program starts", running(MainWaiting), AllReady, Facts{},
			running(MainWaiting), LifeEffects{StartMain: true}},
		{"no main program: readiness starts nothing", running(MainNone), AllReady, Facts{},
			running(MainNone), LifeEffects{}},
		{"main could not start: its status, and the shutdown", running(MainWaiting), MainStartFailed, Facts{Code: 127},
			Life{Main: MainNotStart, Phase: PhaseMain, Code: 127, Set: true, ByMain: true, Reason: EndMain}, LifeEffects{BeginStop: true}},
		{"a main program that never ran is not waited for", Life{Main: MainNotStart, Phase: PhaseMain, Code: 127, Set: true, ByMain: true, Reason: EndMain}, Progress, Facts{HighestLive: 1},
			Life{Main: MainNotStart, Phase: PhaseLevels, Level: 1, Code: 127, Set: true, ByMain: true, Reason: EndMain}, LifeEffects{StopLevel: true, Log: "stopping dependency level 1"}},
		{"main ended: its status wins over an essential service's", Life{Main: MainRunning, Phase: PhaseMain, Code: 3, Set: true, Reason: EndEssential}, MainExited, Facts{Code: 7},
			Life{Main: MainEnded, Phase: PhaseMain, Code: 7, Set: true, ByMain: true, Reason: EndEssential}, LifeEffects{}},
		{"SIGTERM: the main program gets it first", running(MainRunning), ShutdownOrder, Facts{Reason: EndSignal},
			Life{Main: MainRunning, Phase: PhaseMain, Reason: EndSignal}, LifeEffects{BeginStop: true, SignalMain: true}},
		{"the main program is waited for", Life{Main: MainRunning, Phase: PhaseMain, Reason: EndSignal}, Progress, Facts{MainAlive: true, HighestLive: 0},
			Life{Main: MainRunning, Phase: PhaseMain, Reason: EndSignal}, LifeEffects{}},
		{"a level at a time", Life{Main: MainNone, Phase: PhaseLevels, Level: 2, Reason: EndSignal}, Progress, Facts{HighestLive: 0},
			Life{Main: MainNone, Phase: PhaseLevels, Level: 0, Reason: EndSignal}, LifeEffects{StopLevel: true, Log: "stopping dependency level 0"}},
		{"the same level is not stopped twice", Life{Main: MainNone, Phase: PhaseLevels, Level: 0, Reason: EndSignal}, Progress, Facts{HighestLive: 0},
			Life{Main: MainNone, Phase: PhaseLevels, Level: 0, Reason: EndSignal}, LifeEffects{}},
		{"every service stopped: leftovers, with the services' status", Life{Main: MainNone, Phase: PhaseLevels, Reason: EndSignal}, Progress, Facts{HighestLive: -1, Clean: 1},
			Life{Main: MainNone, Phase: PhaseLeftovers, Code: 1, Set: true, Reason: EndSignal}, LifeEffects{Leftovers: true, Log: "every service stopped; exit status 1"}},
		{"leftovers gone: done", Life{Main: MainNone, Phase: PhaseLeftovers, Reason: EndSignal}, LeftoversGone, Facts{},
			Life{Main: MainNone, Phase: PhaseDone, Reason: EndSignal}, LifeEffects{}},
		{"essential gave up: its status", running(MainNone), EssentialEnded, Facts{Code: 3},
			Life{Main: MainNone, Phase: PhaseMain, Code: 3, Set: true, Reason: EndEssential}, LifeEffects{BeginStop: true, EssentialUp: true}},
		{"an essential service during the shutdown changes nothing", Life{Main: MainNone, Phase: PhaseLevels, Reason: EndSignal}, EssentialEnded, Facts{Code: 3},
			Life{Main: MainNone, Phase: PhaseLevels, Reason: EndSignal}, LifeEffects{}},
		{"ready_timeout", running(MainWaiting), ReadyTimedOut, Facts{},
			Life{Main: MainWaiting, Phase: PhaseMain, Code: 1, Set: true, Reason: EndNotReady}, LifeEffects{BeginStop: true}},
		{"ready_timeout after the main program started", running(MainRunning), ReadyTimedOut, Facts{},
			running(MainRunning), LifeEffects{}},
		{"a second SIGTERM kills", Life{Main: MainNone, Phase: PhaseLevels, Reason: EndSignal}, KillOrder, Facts{},
			Life{Main: MainNone, Phase: PhaseLevels, Reason: EndSignal}, LifeEffects{KillAll: true, Log: "killing everything now"}},
		{"shutdown_timeout kills", Life{Main: MainRunning, Phase: PhaseMain, Reason: EndSignal}, DeadlinePassed, Facts{Limit: 9 * time.Second},
			Life{Main: MainRunning, Phase: PhaseMain, Reason: EndSignal}, LifeEffects{KillAll: true, Log: "shutdown_timeout 9s expired: killing everything"}},
		{"settled without a main program: done", running(MainNone), Settled, Facts{Code: 0},
			Life{Main: MainNone, Phase: PhaseDone, Set: true, Reason: EndSettled}, LifeEffects{}},
		{"settled while the main program runs: it decides", running(MainRunning), Settled, Facts{Code: 0},
			running(MainRunning), LifeEffects{}},
		{"a panic: status 1", running(MainNone), ShutdownOrder, Facts{Reason: EndPanic},
			Life{Main: MainNone, Phase: PhaseMain, Code: 1, Set: true, Reason: EndPanic}, LifeEffects{BeginStop: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, fx := decideLife(c.life, c.ev, c.facts)
			if got != c.want || fx != c.fx {
				t.Fatalf("%+v on %s %+v:\n got %+v %+v\nwant %+v %+v", c.life, c.ev, c.facts, got, fx, c.want, c.fx)
			}
		})
	}
}
