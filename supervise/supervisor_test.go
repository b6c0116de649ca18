package supervise

import (
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
)

// fakeLauncher stands in for the reaper: processes are channels, and a
// stop signal ends them at once.
type fakeLauncher struct {
	mu       sync.Mutex
	next     int
	live     map[int]func(reaper.Exit)
	starts   []time.Time
	envs     [][]string // the environment of each start, services' and checks'
	signaled []int      // pids, in the order they were signalled
	// ignoreTerm: SIGTERM ends no process (a SIGKILL still does), so that
	// a shutdown lasts until stop_timeout.
	ignoreTerm bool
}

func newFake() *fakeLauncher { return &fakeLauncher{next: 100, live: map[int]func(reaper.Exit){}} }

func (f *fakeLauncher) Start(c reaper.Cmd, onExit func(reaper.Exit)) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	f.live[f.next] = onExit
	f.starts = append(f.starts, time.Now())
	f.envs = append(f.envs, c.Env)
	return f.next, nil
}

func (f *fakeLauncher) Signal(pid int, sig unix.Signal, group bool) error {
	f.mu.Lock()
	f.signaled = append(f.signaled, pid)
	ignore := f.ignoreTerm && sig == unix.SIGTERM
	f.mu.Unlock()
	if ignore {
		return nil
	}
	f.exit(pid, unix.WaitStatus(sig))
	return nil
}

// exit ends a process with status ws.
func (f *fakeLauncher) exit(pid int, ws unix.WaitStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if onExit, ok := f.live[pid]; ok {
		delete(f.live, pid)
		onExit(reaper.Exit{Pid: pid, Status: ws, At: time.Now()})
	}
}

func (f *fakeLauncher) livePids() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var pids []int
	for pid := range f.live {
		pids = append(pids, pid)
	}
	return pids
}

func (f *fakeLauncher) startCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.starts)
}

func testService(name string) *config.Service {
	return &config.Service{
		Name:             name,
		Command:          []string{"x"},
		Restart:          config.PolicyAlways,
		SuccessExitCodes: []int{0},
		MinUptime:        10 * time.Second,
		MaxRestarts:      -1,
		Backoff:          config.Backoff{Type: "fixed", Delay: 10 * time.Second},
		CrashLoop:        config.CrashLoop{MaxRestarts: 100, Window: time.Minute, Backoff: time.Minute},
		StopSignal:       unix.SIGTERM,
		StopTimeout:      5 * time.Second,
		Output:           "inherit", // no pipes: the test's goroutines must block only on channels
	}
}

// harness runs a supervisor over a fake launcher inside a synctest bubble,
// where time.Sleep steps a fake clock.
type harness struct {
	sup  *Supervisor
	fake *fakeLauncher
	sigs chan Order
	done chan int
}

func testConfig(services ...*config.Service) *config.Config {
	cfg := &config.Config{Path: "test.toml", ShutdownTimeout: 9 * time.Second, ReadyTimeout: time.Minute, Services: map[string]*config.Service{}}
	for _, s := range services {
		cfg.Services[s.Name] = s
		cfg.Order = append(cfg.Order, s.Name)
	}
	return cfg
}

func startHarness(t *testing.T, services ...*config.Service) *harness {
	cfg := testConfig(services...)
	log := logrus.New()
	log.Out = io.Discard
	h := &harness{fake: newFake(), sigs: make(chan Order, 1), done: make(chan int, 1)}
	h.sup = New(cfg, Options{Launcher: h.fake, Log: log, Sink: NewSink(io.Discard, io.Discard, "text")})
	go func() { h.done <- h.sup.Run(h.sigs) }()
	synctest.Wait()
	return h
}

func (h *harness) state(name string) State {
	var st State
	h.sup.Do(func() { st = h.sup.services[name].state })
	return st
}

func (h *harness) pid(name string) int {
	var pid int
	h.sup.Do(func() { pid = h.sup.services[name].pid })
	return pid
}

func (h *harness) shutdown(t *testing.T) {
	h.sigs <- Order{Action: signals.Shutdown, Signal: unix.SIGTERM}
	select {
	case <-h.done:
	case <-time.After(time.Minute):
		t.Fatal("supervisor did not finish")
	}
}

func TestBackoffRunsOnTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := testService("svc")
		svc.Backoff = config.Backoff{Type: "exponential", InitialDelay: time.Second, MaxDelay: 4 * time.Second, Multiplier: 2}
		h := startHarness(t, svc)
		// Each run fails after 100ms; the next start must come exactly
		// after 1s, 2s, 4s, 4s.
		var exits []time.Time
		for range 5 {
			time.Sleep(100 * time.Millisecond)
			exits = append(exits, time.Now())
			h.fake.exit(h.fake.livePids()[0], unix.WaitStatus(1<<8))
			synctest.Wait()
			time.Sleep(10 * time.Second) // longer than any delay
			synctest.Wait()
		}
		want := []time.Duration{1, 2, 4, 4, 4}
		for i, w := range want {
			if gap := h.fake.starts[i+1].Sub(exits[i]); gap != w*time.Second {
				t.Fatalf("restart %d came %s after the exit, want %s", i+1, gap, w*time.Second)
			}
		}
		h.shutdown(t)
	})
}

func TestStartWhileRestartPendingRunsOneProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, testService("svc"))
		h.fake.exit(h.fake.livePids()[0], unix.WaitStatus(1<<8))
		synctest.Wait()
		if st := h.state("svc"); st != Restarting {
			t.Fatalf("state %s, want restarting", st)
		}
		if err := h.sup.Operate("svc", CmdStart); err != nil {
			t.Fatal(err)
		}
		// The cancelled delay would have fired by now.
		time.Sleep(time.Minute)
		synctest.Wait()
		if n, live := h.fake.startCount(), len(h.fake.livePids()); n != 2 || live != 1 {
			t.Fatalf("%d starts, %d live processes; want 2 and 1", n, live)
		}
		h.shutdown(t)
	})
}

func TestOperatorCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := testService("svc")
		svc.Restart = config.PolicyUnlessStopped
		h := startHarness(t, svc, testService("other"))
		if err := h.sup.Operate("svc", CmdStart); err == nil {
			t.Fatal("start of a running service was accepted")
		}
		if err := h.sup.Operate("nope", CmdStart); err == nil {
			t.Fatal("unknown service accepted")
		}
		if err := h.sup.Operate("svc", CmdStop); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := h.state("svc"); st != Stopped {
			t.Fatalf("after stop: %s", st)
		}
		time.Sleep(time.Minute) // no restart comes
		synctest.Wait()
		if st := h.state("svc"); st != Stopped {
			t.Fatalf("an operator-stopped service came back: %s", st)
		}
		before := h.fake.startCount()
		if err := h.sup.Operate("svc", CmdRestart); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := h.state("svc"); st != Running || h.fake.startCount() != before+1 {
			t.Fatalf("after restart: %s, %d starts", st, h.fake.startCount()-before)
		}
		// restart of a running service: stop, then start at once.
		if err := h.sup.Operate("svc", CmdRestart); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if st := h.state("svc"); st != Running || h.fake.startCount() != before+2 || len(h.fake.livePids()) != 2 {
			t.Fatalf("after a second restart: %s, %d starts, %d live", st, h.fake.startCount()-before, len(h.fake.livePids()))
		}
		h.shutdown(t)
	})
}

func TestRestartSettingsApplyFromNextExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// "keep" keeps tend from exiting when svc stops for good.
		h := startHarness(t, testService("svc"), testService("keep"))
		changed := testService("svc")
		changed.Restart = config.PolicyNever
		changed.Backoff = config.Backoff{Type: "fixed", Delay: time.Second}
		if err := h.sup.Apply(testConfig(changed, testService("keep"))); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if h.fake.startCount() != 2 {
			t.Fatalf("a restart-settings change restarted the service (%d starts)", h.fake.startCount())
		}
		h.fake.exit(h.pid("svc"), unix.WaitStatus(1<<8))
		synctest.Wait()
		if st := h.state("svc"); st != Stopped {
			t.Fatalf("the new policy (never) was not applied at the next exit: %s", st)
		}
		// Any other change restarts at once with the new definition.
		h.sup.Operate("svc", CmdStart)
		synctest.Wait()
		other := testService("svc")
		other.Command = []string{"y"}
		if err := h.sup.Apply(testConfig(other, testService("keep"))); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if h.fake.startCount() != 4 || h.state("svc") != Running {
			t.Fatalf("a changed command did not restart the service: %d starts, %s", h.fake.startCount(), h.state("svc"))
		}
		h.shutdown(t)
	})
}

func TestShutdownStopsInReverseLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b, c := testService("a"), testService("b"), testService("c")
		b.DependsOn = []string{"a"}
		c.DependsOn = []string{"b"}
		h := startHarness(t, a, b, c)
		pids := map[int]string{h.pid("a"): "a", h.pid("b"): "b", h.pid("c"): "c"}
		if len(pids) != 3 {
			t.Fatal("services did not start")
		}
		// The fake ends a process as soon as it is signalled, so the order
		// of the signals is the order of the stops.
		h.sigs <- Order{Action: signals.Shutdown, Signal: unix.SIGTERM}
		<-h.done
		var order []string
		for _, pid := range h.fake.signaled {
			order = append(order, pids[pid])
		}
		if got := strings.Join(order, ","); got != "c,b,a" {
			t.Fatalf("stop order %q, want c,b,a", got)
		}
	})
}

// TestZeroDelaysStillRestart: a zero backoff or crash-loop pause is a
// timer of zero, not no timer (the benchmark found services stuck in
// restarting and crash-loop-backoff for ever).
func TestZeroDelaysStillRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := testService("svc")
		svc.Backoff = config.Backoff{Type: "fixed", Delay: 0}
		svc.CrashLoop = config.CrashLoop{MaxRestarts: 2, Window: time.Minute, Backoff: 0}
		h := startHarness(t, svc, testService("keep"))
		for i := range 5 {
			h.fake.exit(h.pid("svc"), unix.WaitStatus(1<<8))
			synctest.Wait()
			if st := h.state("svc"); st != Running {
				t.Fatalf("exit %d: %s, want running again at once", i+1, st)
			}
		}
		h.shutdown(t)
	})
}

// TestAskedStopSaysHowTheRunEnded: a run that was asked to end logs its
// exit ("stopping → stopped: killed by SIGTERM"), not just "exited": an
// exit status is never lost from the log, also in a stop.
func TestAskedStopSaysHowTheRunEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, testService("svc"))
		events, stop := h.sup.Events().Subscribe()
		defer stop()
		if err := h.sup.Operate("svc", CmdStop); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for {
			select {
			case e := <-events:
				if e.Kind == KindState && e.From == Stopping && e.To == Stopped {
					if e.Reason != "killed by SIGTERM" {
						t.Fatalf("stopping → stopped: %q, want how the run ended", e.Reason)
					}
					h.shutdown(t)
					return
				}
			default:
				t.Fatal("no stopping → stopped event")
			}
		}
	})
}
