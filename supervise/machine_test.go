package supervise

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/reaper"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func exitCode(code int) unix.WaitStatus        { return unix.WaitStatus(code << 8) }
func killedBy(sig unix.Signal) unix.WaitStatus { return unix.WaitStatus(sig) }

func defaults() Restart {
	return Restart{
		Policy:           config.PolicyAlways,
		SuccessExitCodes: []int{0},
		MinUptime:        10 * time.Second,
		MaxRestarts:      -1,
		Backoff:          config.Backoff{Type: "fixed", Delay: time.Second},
		CrashLoop:        config.CrashLoop{MaxRestarts: 5, Window: 60 * time.Second, Backoff: 60 * time.Second},
	}
}

// run is one run that started at start and lasted uptime.
func run(start time.Time, uptime time.Duration, ws unix.WaitStatus) Run {
	return Run{Started: start, Exit: reaper.Exit{Status: ws, At: start.Add(uptime)}}
}

func TestPolicyTable(t *testing.T) {
	type want struct{ cleanShort, cleanLong, uncleanShort, uncleanLong State }
	table := map[config.Policy]want{
		config.PolicyAlways:        {Restarting, Restarting, Restarting, Restarting},
		config.PolicyUnlessStopped: {Restarting, Restarting, Restarting, Restarting},
		config.PolicyOnFailure:     {Stopped, Stopped, Restarting, Restarting},
		config.PolicyOnSuccess:     {Restarting, Restarting, Stopped, Stopped},
		config.PolicyNever:         {Stopped, Stopped, Stopped, Stopped},
	}
	for policy, w := range table {
		cases := []struct {
			name    string
			uptime  time.Duration
			status  unix.WaitStatus
			want    State
			failure int
		}{
			{"clean short", time.Second, exitCode(0), w.cleanShort, 1},
			{"clean long", time.Minute, exitCode(0), w.cleanLong, 0},
			{"unclean short", time.Second, exitCode(1), w.uncleanShort, 1},
			{"unclean long", time.Minute, exitCode(1), w.uncleanLong, 0},
			{"signal short", time.Second, killedBy(unix.SIGSEGV), w.uncleanShort, 1},
		}
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s", policy, c.name), func(t *testing.T) {
				r := defaults()
				r.Policy = policy
				counters, o := AfterExit(r, Counters{Failures: 3}, run(t0, c.uptime, c.status))
				if o.State != c.want {
					t.Errorf("state %s, want %s (%s)", o.State, c.want, o.Reason)
				}
				// The failure count moves with the uptime alone.
				wantFailures := 4
				if c.failure == 0 {
					wantFailures = 0
				}
				if counters.Failures != wantFailures {
					t.Errorf("failures %d, want %d", counters.Failures, wantFailures)
				}
			})
		}
	}
}

func TestCleanness(t *testing.T) {
	r := defaults()
	r.SuccessExitCodes = []int{0, 3}
	cases := []struct {
		run  Run
		want bool
	}{
		{run(t0, time.Second, exitCode(0)), true},
		{run(t0, time.Second, exitCode(3)), true},
		{run(t0, time.Second, exitCode(1)), false},
		{run(t0, time.Second, killedBy(unix.SIGTERM)), false},
		{Run{Started: t0, Exit: reaper.Exit{Status: exitCode(0), At: t0}, Failed: true}, false},
	}
	for i, c := range cases {
		if got := r.Clean(c.run); got != c.want {
			t.Errorf("case %d: clean=%v, want %v", i, got, c.want)
		}
	}
}

// step feeds the machine n short failing runs, each started when the
// previous delay ran out, and returns the delays it chose.
func step(r Restart, c Counters, now time.Time, uptimes ...time.Duration) ([]time.Duration, []State, Counters) {
	var delays []time.Duration
	var states []State
	for _, up := range uptimes {
		var o Outcome
		c, o = AfterExit(r, c, run(now, up, exitCode(1)))
		now = now.Add(up + o.Delay)
		delays, states = append(delays, o.Delay), append(states, o.State)
		if o.State == CrashLoopBackoff {
			c, _ = AfterCrashLoop(r, c)
		}
	}
	return delays, states, c
}

func TestExponentialBackoff(t *testing.T) {
	r := defaults()
	r.Backoff = config.Backoff{Type: "exponential", InitialDelay: time.Second, MaxDelay: 30 * time.Second, Multiplier: 2}
	r.CrashLoop.MaxRestarts = 100 // keep the crash loop out of this test
	short := time.Second
	delays, _, c := step(r, Counters{}, t0, short, short, short, short, short, short, short)
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if delays[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v seconds", delays, want)
		}
	}
	// A healthy run resets the growth: the next delay is initial_delay.
	delays, _, _ = step(r, c, t0.Add(time.Hour), time.Minute, short)
	if delays[0] != time.Second || delays[1] != time.Second {
		t.Fatalf("after a healthy run: %v, want 1s 1s", delays)
	}
}

func TestDelay(t *testing.T) {
	exp := config.Backoff{Type: "exponential", InitialDelay: 500 * time.Millisecond, MaxDelay: 10 * time.Second, Multiplier: 3}
	cases := []struct {
		b        config.Backoff
		failures int
		want     time.Duration
	}{
		{config.Backoff{Type: "fixed", Delay: 2 * time.Second}, 0, 2 * time.Second},
		{config.Backoff{Type: "fixed", Delay: 2 * time.Second}, 9, 2 * time.Second},
		{exp, 0, 500 * time.Millisecond},
		{exp, 1, 500 * time.Millisecond},
		{exp, 2, 1500 * time.Millisecond},
		{exp, 3, 4500 * time.Millisecond},
		{exp, 4, 10 * time.Second},
		{exp, 10000, 10 * time.Second},
	}
	for _, c := range cases {
		if got := Delay(c.b, c.failures); got != c.want {
			t.Errorf("Delay(%s, f=%d) = %s, want %s", c.b.Type, c.failures, got, c.want)
		}
	}
}

func TestCrashLoopTripsAndRecovers(t *testing.T) {
	r := defaults() // 5 restarts in 60s trip a 60s backoff
	short := 100 * time.Millisecond
	delays, states, c := step(r, Counters{}, t0, short, short, short, short, short)
	wantStates := []State{Restarting, Restarting, Restarting, Restarting, CrashLoopBackoff}
	for i := range wantStates {
		if states[i] != wantStates[i] {
			t.Fatalf("states %v, want %v", states, wantStates)
		}
	}
	if delays[4] != 60*time.Second {
		t.Fatalf("crash-loop backoff %s, want 60s", delays[4])
	}
	if len(c.Window) != 0 || c.Restarts != 5 {
		t.Fatalf("after the backoff: window %d, restarts %d; want 0 and 5", len(c.Window), c.Restarts)
	}
	// Restarts spread wider than the window never trip it.
	_, states, _ = step(r, Counters{}, t0, 20*time.Second, 20*time.Second, 20*time.Second, 20*time.Second, 20*time.Second, 20*time.Second)
	for _, s := range states {
		if s != Restarting {
			t.Fatalf("restarts 21s apart: %v", states)
		}
	}
}

// TestMaxRestartsCountsEveryStart checks that a service with max_restarts N
// is started exactly N+1 times, crash-loop backoffs included.
func TestMaxRestartsCountsEveryStart(t *testing.T) {
	for _, max := range []int{0, 1, 3, 4, 5, 7, 12} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			r := defaults()
			r.MaxRestarts = max
			r.CrashLoop.MaxRestarts = 3
			c, now, starts := Counters{}, t0, 1
			for i := 0; i < 100; i++ {
				var o Outcome
				c, o = AfterExit(r, c, run(now, time.Second, exitCode(1)))
				now = now.Add(time.Second + o.Delay)
				if o.State == MaxRestartsReached {
					break
				}
				if o.State == CrashLoopBackoff {
					var s State
					if c, s = AfterCrashLoop(r, c); s == MaxRestartsReached {
						break
					}
				}
				starts++
			}
			if starts != max+1 {
				t.Fatalf("started %d times, want %d", starts, max+1)
			}
		})
	}
}

func TestAfterCrashLoopHonoursMaxRestarts(t *testing.T) {
	// Settings reloaded during a backoff lowered max_restarts below the
	// count: the start after the backoff must not happen.
	r := defaults()
	r.MaxRestarts = 2
	if _, s := AfterCrashLoop(r, Counters{Restarts: 2}); s != MaxRestartsReached {
		t.Fatalf("state %s, want %s", s, MaxRestartsReached)
	}
	if c, s := AfterCrashLoop(r, Counters{Restarts: 1, Window: []time.Time{t0}}); s != Running || c.Restarts != 2 || c.Window != nil {
		t.Fatalf("state %s counters %+v", s, c)
	}
}
