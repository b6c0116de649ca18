package supervise

// The model-based test: random sequences of everything that can happen to a
// supervisor (process exits, operator actions, reloads that add, remove,
// change and re-add, checks that pass and fail, forks that fail, timers,
// signals, shutdown), run against the real supervisor over a fake launcher
// on synctest's fake clock, with the invariants checked after every step.
//
// A failure prints its seed and the shrunk sequence. Replay one seed with
//
//	TEND_MODEL_SEED=1234 go test -run TestModel -v ./supervise
//
// and change the number of sequences with TEND_MODEL_RUNS.

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
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

var modelNames = []string{"a", "b", "c", "d"}

// modelProc is one process of the fake: a service's, or a check's.
type modelProc struct {
	name    string // the service; "" for a check
	stopSig unix.Signal
	ch      chan reaper.Exit
}

// modelFake stands in for the reaper. Services' processes end when the test
// says, or on their stop signal unless they are stubborn, or on SIGKILL.
// It records what a real system would show as wrong: two processes of one
// service, or a service stopped with a signal that is not its own.
type modelFake struct {
	mu         sync.Mutex
	next       int
	live       map[int]*modelProc
	starts     map[string]int
	stubborn   map[string]bool
	unhealthy  map[string]bool
	forkFails  int
	violations []string
}

func newModelFake() *modelFake {
	return &modelFake{next: 1000, live: map[int]*modelProc{}, starts: map[string]int{}, stubborn: map[string]bool{}, unhealthy: map[string]bool{}}
}

func (f *modelFake) Start(cmd reaper.Cmd) (int, <-chan reaper.Exit, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.forkFails > 0 {
		f.forkFails--
		return 0, nil, fmt.Errorf("fork: %w", unix.EAGAIN)
	}
	f.next++
	ch := make(chan reaper.Exit, 1)
	if cmd.Args[0] == "check" {
		code := 0
		if f.unhealthy[cmd.Args[1]] {
			code = 1
		}
		ch <- reaper.Exit{Pid: f.next, Status: unix.WaitStatus(code << 8), At: time.Now()}
		return f.next, ch, nil
	}
	name := cmd.Args[1]
	for pid, p := range f.live {
		if p.name == name {
			f.violations = append(f.violations, fmt.Sprintf("service %s started while its process %d still runs", name, pid))
		}
	}
	sig, _ := signals.Parse(cmd.Args[3])
	f.live[f.next] = &modelProc{name: name, stopSig: sig, ch: ch}
	f.starts[name]++
	return f.next, ch, nil
}

func (f *modelFake) Signal(pid int, sig unix.Signal, group bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.live[pid]
	if !ok {
		return unix.ESRCH
	}
	switch {
	case sig == unix.SIGKILL:
		f.end(pid, unix.WaitStatus(sig))
	case sig == unix.SIGUSR1:
	case sig == p.stopSig:
		if !f.stubborn[p.name] {
			f.end(pid, unix.WaitStatus(sig))
		}
	default:
		f.violations = append(f.violations, fmt.Sprintf("service %s was sent %s; its process's stop signal is %s", p.name, signals.Name(sig), signals.Name(p.stopSig)))
	}
	return nil
}

func (f *modelFake) end(pid int, ws unix.WaitStatus) {
	p := f.live[pid]
	delete(f.live, pid)
	p.ch <- reaper.Exit{Pid: pid, Status: ws, At: time.Now()}
}

func (f *modelFake) livePids() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	pids := make([]int, 0, len(f.live))
	for pid := range f.live {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}

// genService makes a random definition of name that depends only on
// services before it in the config.
func genService(r *rand.Rand, name string, before []string) *config.Service {
	pick := func(xs ...time.Duration) time.Duration { return xs[r.IntN(len(xs))] }
	stop := []string{"TERM", "INT"}[r.IntN(2)]
	sig, _ := signals.Parse(stop)
	s := &config.Service{
		Name:             name,
		Command:          []string{"svc", name, strconv.Itoa(r.IntN(2)), stop},
		Restart:          []config.Policy{config.PolicyAlways, config.PolicyOnFailure, config.PolicyOnSuccess, config.PolicyUnlessStopped, config.PolicyNever}[r.IntN(5)],
		SuccessExitCodes: []int{0},
		MinUptime:        pick(500*time.Millisecond, 2*time.Second, 10*time.Second),
		MaxRestarts:      []int{-1, -1, 0, 2, 5}[r.IntN(5)],
		Backoff:          config.Backoff{Type: "fixed", Delay: pick(0, 100*time.Millisecond, time.Second)},
		CrashLoop:        config.CrashLoop{MaxRestarts: 2 + r.IntN(4), Window: 10 * time.Second, Backoff: pick(time.Second, 5*time.Second)},
		StopSignal:       sig,
		StopTimeout:      pick(500*time.Millisecond, 2*time.Second),
		Essential:        r.IntN(15) == 0,
		Output:           "inherit",
	}
	if r.IntN(3) == 0 {
		s.Backoff = config.Backoff{Type: "exponential", InitialDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second, Multiplier: 2}
	}
	if r.IntN(8) == 0 {
		s.Oneshot = true
		s.Restart = []config.Policy{config.PolicyNever, config.PolicyOnFailure}[r.IntN(2)]
	}
	if r.IntN(20) == 0 {
		s.Output = "/nonexistent-dir/out.log" // its set-up fails: the run ends at once
	}
	for _, b := range before {
		if r.IntN(3) == 0 {
			s.DependsOn = append(s.DependsOn, b)
		}
	}
	check := func(health bool) *config.Check {
		c := &config.Check{Kind: config.CheckExec, Exec: []string{"check", name}, Interval: 300 * time.Millisecond, Timeout: 100 * time.Millisecond}
		if health {
			c.Interval, c.Threshold = 2*time.Second, 1+r.IntN(2)
		}
		return c
	}
	if r.IntN(4) == 0 {
		s.Ready = check(false)
	}
	if r.IntN(4) == 0 {
		s.Health = check(true)
	}
	return s
}

func genConfig(r *rand.Rand) *config.Config {
	cfg := &config.Config{Path: "model.toml", ShutdownTimeout: 9 * time.Second, ReadyTimeout: 5 * time.Second, Services: map[string]*config.Service{}}
	for _, name := range modelNames {
		if r.IntN(4) != 0 {
			cfg.Services[name] = genService(r, name, cfg.Order)
			cfg.Order = append(cfg.Order, name)
		}
	}
	return cfg
}

type stepKind int

const (
	stepSleep stepKind = iota
	stepExit
	stepOperate
	stepReload
	stepHangup
	stepBadHangup
	stepHealth
	stepStubborn
	stepForkFail
	stepForward
	stepShutdown
	stepTerm
)

type modelStep struct {
	kind stepKind
	n    int
	d    time.Duration
	cmd  Command
	cfg  *config.Config
}

func (s modelStep) String() string {
	switch s.kind {
	case stepSleep:
		return "sleep " + s.d.String()
	case stepExit:
		return fmt.Sprintf("exit process #%d with %s", s.n, modelStatuses[s.n%len(modelStatuses)].name)
	case stepOperate:
		return fmt.Sprintf("operator %s %s", s.cmd, modelTarget(s.n))
	case stepReload, stepHangup:
		kind := map[stepKind]string{stepReload: "reload", stepHangup: "SIGHUP reload"}[s.kind]
		var parts []string
		for _, name := range s.cfg.Order {
			sv := s.cfg.Services[name]
			parts = append(parts, fmt.Sprintf("%s(%s %s dep=%v ready=%v health=%v ess=%v one=%v)", name, sv.Restart, sv.Command[2:], sv.DependsOn, sv.Ready != nil, sv.Health != nil, sv.Essential, sv.Oneshot))
		}
		return kind + " to " + strings.Join(parts, " ")
	case stepBadHangup:
		return "SIGHUP with an invalid config"
	case stepHealth:
		return "flip health of " + modelTarget(s.n)
	case stepStubborn:
		return "flip stubbornness of " + modelTarget(s.n)
	case stepForkFail:
		return "next fork fails"
	case stepForward:
		return "SIGUSR1"
	case stepShutdown:
		return "tend ctl shutdown"
	case stepTerm:
		return "SIGTERM"
	}
	return "?"
}

func modelTarget(n int) string {
	if n%(len(modelNames)+1) == len(modelNames) {
		return "nope"
	}
	return modelNames[n%(len(modelNames)+1)]
}

var modelStatuses = []struct {
	name string
	ws   unix.WaitStatus
}{{"exit 0", 0}, {"exit 1", 1 << 8}, {"exit 3", 3 << 8}, {"SIGKILL", unix.WaitStatus(unix.SIGKILL)}, {"SIGSEGV", unix.WaitStatus(unix.SIGSEGV)}}

func genSteps(r *rand.Rand, n int) []modelStep {
	steps := make([]modelStep, 0, n)
	for range n {
		st := modelStep{n: r.IntN(1000)}
		switch w := r.IntN(100); {
		case w < 30:
			st.kind, st.d = stepSleep, []time.Duration{time.Millisecond, 50 * time.Millisecond, 300 * time.Millisecond, time.Second, 3 * time.Second, 12 * time.Second, 70 * time.Second}[r.IntN(7)]
		case w < 50:
			st.kind = stepExit
		case w < 70:
			st.kind, st.cmd = stepOperate, []Command{CmdStart, CmdStop, CmdRestart}[r.IntN(3)]
		case w < 77:
			st.kind, st.cfg = stepReload, genConfig(r)
		case w < 81:
			st.kind, st.cfg = stepHangup, genConfig(r)
		case w < 83:
			st.kind = stepBadHangup
		case w < 90:
			st.kind = stepHealth
		case w < 95:
			st.kind = stepStubborn
		case w < 97:
			st.kind = stepForkFail
		case w < 98:
			st.kind = stepForward
		case w < 99:
			st.kind = stepShutdown
		default:
			st.kind = stepTerm
		}
		steps = append(steps, st)
	}
	return steps
}

// modelRun is one sequence against one supervisor.
type modelRun struct {
	fake    *modelFake
	sup     *Supervisor
	sigs    chan Order
	done    chan struct{}
	code    int
	panic   any
	hangup  *config.Config // what the next SIGHUP loads; nil: an invalid file
	configs map[*config.Config][]string

	asked    map[EndReason]bool // the end reasons the sequence gave tend
	held     map[string]int     // services an operator stopped: their starts then
	restarts map[string]int
	records  map[string]*service
	resetOK  map[string]bool
	errs     []string
}

func (m *modelRun) fail(format string, args ...any) {
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
}

func (m *modelRun) finished() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// runModel runs steps inside a synctest bubble and returns what went wrong.
func runModel(t *testing.T, initial *config.Config, steps []modelStep, verbose bool) (errs []string) {
	synctest.Test(t, func(t *testing.T) {
		errs = runModelInBubble(initial, steps, verbose, t)
	})
	return errs
}

func runModelInBubble(initial *config.Config, steps []modelStep, verbose bool, t *testing.T) []string {
	log := logrus.New()
	log.Out = io.Discard
	log.Level = logrus.PanicLevel
	if verbose {
		log.Out, log.Level = os.Stderr, logrus.DebugLevel
	}
	m := &modelRun{
		fake: newModelFake(), sigs: make(chan Order, 4), done: make(chan struct{}),
		configs: map[*config.Config][]string{}, asked: map[EndReason]bool{},
		held: map[string]int{}, restarts: map[string]int{}, records: map[string]*service{}, resetOK: map[string]bool{},
	}
	m.remember(initial)
	m.sup = New(initial, Options{Launcher: m.fake, Log: log, Sink: NewSink(io.Discard, io.Discard, "text"),
		LoadConfig: func() (*config.Config, error) {
			if m.hangup == nil {
				return nil, errors.New("model.toml:1: invalid")
			}
			return m.hangup, nil
		}})
	go func() {
		defer close(m.done)
		defer func() { m.panic = recover() }()
		m.code = m.sup.Run(m.sigs)
	}()
	synctest.Wait()
	m.check("start")
	for i, st := range steps {
		if m.finished() {
			break
		}
		m.apply(st)
		synctest.Wait()
		m.check(fmt.Sprintf("step %d (%s)", i, st))
		if len(m.errs) > 0 {
			break
		}
	}
	// Wind down: a shutdown must end every process and Run.
	if !m.finished() {
		m.asked[EndSignal] = true
		m.sigs <- Order{Action: signals.Shutdown, Signal: unix.SIGTERM}
		for i := 0; i < 120 && !m.finished(); i++ {
			time.Sleep(time.Second)
			synctest.Wait()
		}
		if !m.finished() {
			m.fail("SIGTERM did not end the supervisor within 120s")
			m.sigs <- Order{Action: signals.Shutdown, Signal: unix.SIGTERM} // the second one kills everything
			time.Sleep(time.Minute)
			synctest.Wait()
		}
	}
	m.checkEnd()
	// Leave nothing blocked in the bubble.
	for _, pid := range m.fake.livePids() {
		m.fake.mu.Lock()
		m.fake.end(pid, unix.WaitStatus(unix.SIGKILL))
		m.fake.mu.Unlock()
	}
	synctest.Wait()
	return m.errs
}

func (m *modelRun) remember(cfg *config.Config) {
	if cfg != nil {
		m.configs[cfg] = slices.Clone(cfg.Order)
	}
}

func (m *modelRun) apply(st modelStep) {
	switch st.kind {
	case stepSleep:
		time.Sleep(st.d)
	case stepExit:
		var pids []int
		m.fake.mu.Lock()
		for pid, p := range m.fake.live {
			if p.name != "" {
				pids = append(pids, pid)
			}
		}
		sort.Ints(pids)
		if len(pids) > 0 {
			m.fake.end(pids[st.n%len(pids)], modelStatuses[st.n%len(modelStatuses)].ws)
		}
		m.fake.mu.Unlock()
	case stepOperate:
		name := modelTarget(st.n)
		err := m.sup.Operate(name, st.cmd)
		synctest.Wait()
		switch {
		case err == nil:
			m.fake.mu.Lock()
			starts := m.fake.starts[name]
			m.fake.mu.Unlock()
			if st.cmd == CmdStop {
				m.held[name] = starts
			} else {
				delete(m.held, name)
				m.resetOK[name] = true
			}
		case errors.Is(err, ErrConflict), errors.Is(err, ErrUnknownService):
		case errors.Is(err, ErrFinished) && m.finished():
		default:
			m.fail("operator %s %s was not answered: %v", st.cmd, name, err)
		}
	case stepReload, stepHangup:
		m.remember(st.cfg)
		if st.kind == stepReload {
			if err := m.sup.Apply(st.cfg); err != nil && !errors.Is(err, ErrConflict) && !(errors.Is(err, ErrFinished) && m.finished()) {
				m.fail("reload was not answered: %v", err)
			}
		} else {
			m.hangup = st.cfg
			m.sigs <- Order{Action: signals.Reload, Signal: unix.SIGHUP}
		}
		synctest.Wait()
		for name := range m.held {
			if s, ok := st.cfg.Services[name]; !ok || s.Restart == config.PolicyAlways {
				delete(m.held, name)
			}
		}
		for _, name := range modelNames {
			m.resetOK[name] = true
		}
	case stepBadHangup:
		m.hangup = nil
		m.sigs <- Order{Action: signals.Reload, Signal: unix.SIGHUP}
	case stepHealth, stepStubborn:
		name := modelTarget(st.n)
		m.fake.mu.Lock()
		flags := map[stepKind]map[string]bool{stepHealth: m.fake.unhealthy, stepStubborn: m.fake.stubborn}[st.kind]
		flags[name] = !flags[name]
		m.fake.mu.Unlock()
	case stepForkFail:
		m.fake.mu.Lock()
		m.fake.forkFails++
		m.fake.mu.Unlock()
	case stepForward:
		m.sigs <- Order{Action: signals.Forward, Signal: unix.SIGUSR1}
	case stepShutdown:
		m.asked[EndRequested] = true
		if err := m.sup.Shutdown("model"); err != nil && !(errors.Is(err, ErrFinished) && m.finished()) {
			m.fail("shutdown was not answered: %v", err)
		}
	case stepTerm:
		m.asked[EndSignal] = true
		m.sigs <- Order{Action: signals.Shutdown, Signal: unix.SIGTERM}
	}
}

// check verifies the invariants on the supervisor's goroutine, or directly
// once it has ended.
func (m *modelRun) check(where string) {
	if m.finished() {
		m.checkEnd()
		return
	}
	if !m.sup.Do(func() { m.invariants(where) }) && !m.finished() {
		m.fail("%s: the supervisor did not answer", where)
	}
	m.fake.mu.Lock()
	for _, v := range m.fake.violations {
		m.fail("%s: %s", where, v)
	}
	m.fake.violations = nil
	for name, at := range m.held {
		if m.fake.starts[name] != at {
			m.fail("%s: %s was started again after an operator stopped it", where, name)
		}
	}
	m.fake.mu.Unlock()
}

// invariants runs on the supervisor's goroutine.
func (m *modelRun) invariants(where string) {
	s := m.sup
	m.fake.mu.Lock()
	defer m.fake.mu.Unlock()
	live := map[int]int{}
	for _, svc := range s.order {
		if s.services[svc.name] != svc {
			m.fail("%s: %s is in the order but not in the map", where, svc.name)
		}
		hasProcess := svc.state == Running || svc.state == Stopping
		if hasProcess != (svc.pid != 0) {
			m.fail("%s: %s is %s with pid %d", where, svc.name, svc.state, svc.pid)
		}
		if svc.pid != 0 {
			if p, ok := m.fake.live[svc.pid]; !ok || p.name != svc.name {
				m.fail("%s: %s shows process %d, which does not run", where, svc.name, svc.pid)
			}
		}
		if (svc.state == Restarting || svc.state == CrashLoopBackoff) && svc.timer == nil {
			m.fail("%s: %s is %s with no timer to end it", where, svc.name, svc.state)
		}
		if svc.goal == GoalRemoved && svc.state != Stopping {
			m.fail("%s: removed service %s is %s, not forgotten", where, svc.name, svc.state)
		}
		if svc.state == Running || svc.state == Stopping {
			live[svc.level]++
		}
		if svc.lastExit != nil && svc.lastExit.At.Sub(svc.started) > 24*time.Hour {
			m.fail("%s: %s's last run lasted %s: its start time is wrong", where, svc.name, svc.lastExit.At.Sub(svc.started))
		}
		if prev, ok := m.records[svc.name]; ok && prev == svc && svc.counters.Restarts < m.restarts[svc.name] && !m.resetOK[svc.name] {
			m.fail("%s: %s's restarts went back from %d to %d", where, svc.name, m.restarts[svc.name], svc.counters.Restarts)
		}
		if m.records[svc.name] != svc || svc.counters.Restarts < m.restarts[svc.name] {
			m.resetOK[svc.name] = false
		}
		m.records[svc.name], m.restarts[svc.name] = svc, svc.counters.Restarts
	}
	if len(s.order) != len(s.services) {
		m.fail("%s: %d services in the order, %d in the map", where, len(s.order), len(s.services))
	}
	for level, n := range s.deps.live {
		if n != live[level] {
			m.fail("%s: level %d counts %d live services, %d are", where, level, n, live[level])
		}
	}
	for pid, p := range m.fake.live {
		if p.name == "" {
			continue
		}
		if svc := s.services[p.name]; svc == nil || svc.pid != pid {
			m.fail("%s: process %d of %s runs, and tend does not know it", where, pid, p.name)
		}
	}
	// What the API shows: the config's services, no removed ones.
	for _, svc := range s.order {
		if _, inConfig := s.cfg.Services[svc.name]; inConfig == (svc.goal == GoalRemoved) {
			m.fail("%s: %s is in the config %v but its goal is %s", where, svc.name, inConfig, svc.goal)
		}
	}
}

// checkEnd verifies why and how the supervisor ended.
func (m *modelRun) checkEnd() {
	if !m.finished() {
		return
	}
	if m.panic != nil {
		m.fail("panic: %v", m.panic)
		return
	}
	s := m.sup
	for cfg, order := range m.configs {
		if !slices.Equal(cfg.Order, order) {
			m.fail("the supervisor changed a config's order: %v, was %v", cfg.Order, order)
		}
	}
	switch why := s.Ended(); why {
	case EndSignal, EndRequested:
		if !m.asked[why] {
			m.fail("tend ended for %q, which nobody asked for", why)
		}
	case EndEssential:
		gaveUp := false
		for _, svc := range s.order {
			if svc.spec.Essential && svc.goal != GoalHeld && (svc.state == MaxRestartsReached || (svc.state == Stopped && !svc.lastClean) || svc.blocked != "") {
				gaveUp = true
			}
		}
		if !gaveUp {
			m.fail("tend ended because an essential service gave up, and none did")
		}
	case EndSettled:
		if len(s.order) == 0 {
			m.fail("tend ended with no service left")
		}
		for _, svc := range s.order {
			ended := svc.state == Stopped || svc.state == MaxRestartsReached || (svc.state == Idle && svc.blocked != "")
			if !ended || svc.goal == GoalHeld || svc.goal == GoalRemoved {
				m.fail("tend ended by itself while %s is %s (goal %s)", svc.name, svc.state, svc.goal)
			}
		}
	default:
		m.fail("tend ended for %q", why)
	}
	for _, pid := range m.fake.livePids() {
		m.fake.mu.Lock()
		if p := m.fake.live[pid]; p.name != "" {
			m.fail("process %d of %s still runs after tend ended", pid, p.name)
		}
		m.fake.mu.Unlock()
	}
}

const modelSteps = 40

func TestModel(t *testing.T) {
	runs := 10000
	if testing.Short() {
		runs = 1000
	}
	if v, err := strconv.Atoi(os.Getenv("TEND_MODEL_RUNS")); err == nil {
		runs = v
	}
	first := uint64(1)
	if v, err := strconv.ParseUint(os.Getenv("TEND_MODEL_SEED"), 10, 64); err == nil {
		first, runs = v, 1
	}
	// Sequences are independent: one worker per CPU, each its own subtest.
	start := time.Now()
	workers := uint64(max(1, min(runtime.GOMAXPROCS(0), runs)))
	for w := range workers {
		t.Run(fmt.Sprintf("worker%d", w), func(t *testing.T) {
			t.Parallel()
			for seed := first + w; seed < first+uint64(runs); seed += workers {
				modelSeed(t, seed, runs == 1 && testing.Verbose())
			}
		})
	}
	t.Cleanup(func() {
		t.Logf("%d sequences of %d steps in %s", runs, modelSteps, time.Since(start).Round(time.Millisecond))
	})
}

// modelSeed runs one seed's sequence; a failure is shrunk and reported
// with what replays it.
func modelSeed(t *testing.T, seed uint64, verbose bool) {
	initial, steps := genModel(seed)
	errs := runModel(t, initial, steps, verbose)
	if len(errs) == 0 {
		return
	}
	keep := shrink(t, seed)
	initial, steps = genModel(seed)
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d (replay: TEND_MODEL_SEED=%d go test -run TestModel -v ./supervise)\n", seed, seed)
	fmt.Fprintf(&b, "initial config: %s\n", modelStep{kind: stepReload, cfg: initial})
	fmt.Fprintf(&b, "shrunk from %d to %d steps:\n", len(steps), len(keep))
	for _, i := range keep {
		fmt.Fprintf(&b, "  %2d. %s\n", i, steps[i])
	}
	fmt.Fprintf(&b, "violations:\n  %s", strings.Join(errs, "\n  "))
	t.Fatal(b.String())
}

// genModel makes a seed's initial config and steps, afresh each time: a
// supervisor that wrongly changed a config of one run cannot change the
// next.
func genModel(seed uint64) (*config.Config, []modelStep) {
	r := rand.New(rand.NewPCG(seed, 0))
	return genConfig(r), genSteps(r, modelSteps)
}

// shrink finds a smaller list of the seed's steps that still fails, by
// dropping halves, quarters, … of it while the failure stays.
func shrink(t *testing.T, seed uint64) []int {
	keep := make([]int, modelSteps)
	for i := range keep {
		keep[i] = i
	}
	fails := func(idx []int) bool {
		initial, steps := genModel(seed)
		var sub []modelStep
		for _, i := range idx {
			sub = append(sub, steps[i])
		}
		return len(runModel(t, initial, sub, false)) > 0
	}
	for chunk := len(keep) / 2; chunk >= 1; chunk /= 2 {
		for i := 0; i+chunk <= len(keep); {
			try := append(slices.Clone(keep[:i]), keep[i+chunk:]...)
			if fails(try) {
				keep = try
				continue
			}
			i++
		}
	}
	return keep
}
