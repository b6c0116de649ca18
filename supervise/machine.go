package supervise

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/reaper"
)

// State is where a service is in its life. These seven names are the
// contract (SPEC section 5); ready and healthy are separate flags.
type State string

const (
	Idle               State = "idle"
	Running            State = "running"
	Restarting         State = "restarting"
	Stopping           State = "stopping"
	Stopped            State = "stopped"
	CrashLoopBackoff   State = "crash-loop-backoff"
	MaxRestartsReached State = "max-restarts-reached"
)

// Restart is the part of a service's definition that decides what happens
// after an exit. A reload that changes only these applies them from the
// next exit, without a restart.
type Restart struct {
	Policy           config.Policy
	SuccessExitCodes []int
	MinUptime        time.Duration
	MaxRestarts      int // -1 = unlimited
	Backoff          config.Backoff
	CrashLoop        config.CrashLoop
}

// RestartOf takes the restart settings out of a service definition.
func RestartOf(s *config.Service) Restart {
	return Restart{
		Policy:           s.Restart,
		SuccessExitCodes: s.SuccessExitCodes,
		MinUptime:        s.MinUptime,
		MaxRestarts:      s.MaxRestarts,
		Backoff:          s.Backoff,
		CrashLoop:        s.CrashLoop,
	}
}

// Counters is what the machine remembers between runs.
type Counters struct {
	Failures int         // consecutive runs shorter than min_uptime
	Restarts int         // automatic restarts so far, for max_restarts
	Window   []time.Time // restarts inside the crash-loop window
}

// Run describes one run of a service that has ended.
type Run struct {
	Started time.Time
	Exit    reaper.Exit
	// Failed marks a run ended by tend for a failed health check or a
	// readiness timeout: unclean whatever the exit status says.
	Failed bool
}

// Clean reports whether the run counts as a success.
func (r Restart) Clean(run Run) bool {
	if run.Failed || run.Exit.Signaled() {
		return false
	}
	return slices.Contains(r.SuccessExitCodes, run.Exit.Status.ExitStatus())
}

// Outcome is what the machine decided after an exit.
type Outcome struct {
	State  State         // Stopped, MaxRestartsReached, CrashLoopBackoff or Restarting
	Delay  time.Duration // before the next start, in CrashLoopBackoff or Restarting
	Clean  bool
	Uptime time.Duration
	Reason string
}

// AfterExit applies SPEC section 5, steps 1 to 6, to a run that ended
// without anyone asking it to stop.
func AfterExit(r Restart, c Counters, run Run) (Counters, Outcome) {
	c.Window = slices.Clone(c.Window)
	now := run.Exit.At
	o := Outcome{Uptime: now.Sub(run.Started), Clean: r.Clean(run)}
	// 1. A long enough run wipes the slate for the backoff.
	if o.Uptime >= r.MinUptime {
		c.Failures = 0
	} else {
		c.Failures++
	}
	// 3. The policy.
	if !r.wantsRestart(o.Clean) {
		o.State, o.Reason = Stopped, fmt.Sprintf("restart policy %s does not restart after a %s exit", r.Policy, cleanWord(o.Clean))
		return c, o
	}
	// 4. The budget of automatic restarts.
	if r.MaxRestarts >= 0 && c.Restarts >= r.MaxRestarts {
		o.State, o.Reason = MaxRestartsReached, fmt.Sprintf("max_restarts %d reached", r.MaxRestarts)
		return c, o
	}
	// 5. Too many restarts in the window: a long pause. The start after it
	// is counted (and checked against max_restarts) when it happens.
	c.Window = append(inWindow(c.Window, now, r.CrashLoop.Window), now)
	if len(c.Window) >= r.CrashLoop.MaxRestarts {
		o.State, o.Delay = CrashLoopBackoff, r.CrashLoop.Backoff
		o.Reason = fmt.Sprintf("%d restarts within %s", len(c.Window), r.CrashLoop.Window)
		return c, o
	}
	// 6. An ordinary restart after the backoff delay.
	c.Restarts++
	o.State, o.Delay = Restarting, Delay(r.Backoff, c.Failures)
	o.Reason = fmt.Sprintf("restart policy %s", r.Policy)
	return c, o
}

// AfterCrashLoop decides what happens when a crash-loop backoff has run
// out: the window is cleared and the service starts, unless that start
// would go over max_restarts (a defect of the original design ignored it).
func AfterCrashLoop(r Restart, c Counters) (Counters, State) {
	c.Window = nil
	if r.MaxRestarts >= 0 && c.Restarts >= r.MaxRestarts {
		return c, MaxRestartsReached
	}
	c.Restarts++
	return c, Running
}

func (r Restart) wantsRestart(clean bool) bool {
	switch r.Policy {
	case config.PolicyAlways, config.PolicyUnlessStopped:
		return true
	case config.PolicyOnFailure:
		return !clean
	case config.PolicyOnSuccess:
		return clean
	default: // never
		return false
	}
}

// inWindow keeps the restarts younger than window.
func inWindow(times []time.Time, now time.Time, window time.Duration) []time.Time {
	kept := times[:0]
	for _, t := range times {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	return kept
}

// Delay is the pause before a restart after failures consecutive short
// runs. Exponential backoff starts at initial_delay itself (the original
// design began at initial_delay × multiplier).
func Delay(b config.Backoff, failures int) time.Duration {
	if b.Type != "exponential" {
		return b.Delay
	}
	if failures <= 1 {
		return b.InitialDelay
	}
	d := float64(b.InitialDelay) * math.Pow(b.Multiplier, float64(failures-1))
	if d >= float64(b.MaxDelay) || math.IsInf(d, 0) || math.IsNaN(d) {
		return b.MaxDelay
	}
	return time.Duration(d)
}

func cleanWord(clean bool) string {
	if clean {
		return "clean"
	}
	return "unclean"
}
