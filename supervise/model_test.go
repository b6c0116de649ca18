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
	"runtime/debug"
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
	"github.com/tend-init/tend/tree"
)

var modelNames = []string{"a", "b", "c", "d"}

// modelProc is one process of the fake: a service's, or a check's, or the
// main program.
type modelProc struct {
	name     string // the service; "" for a check or the main program
	stopSig  unix.Signal
	pgid     int               // its process group: a worker may have left the leader's
	ignores  bool              // it ignores the stop signal (only SIGKILL ends it)
	onExit   func(reaper.Exit) // the main program's
	run      *modelTreeRun     // a service's
	isLeader bool
}

// modelTreeRun is one run of a service in the fake: its main process and
// the workers it made. What the supervisor hears of it goes through news,
// in order, on a goroutine of its own, as the tracker's callbacks do.
type modelTreeRun struct {
	f       *modelFake
	name    string
	leader  int
	stopSig unix.Signal
	members map[int]*modelProc
	watch   tree.Watch
	news    chan func()
	gone    bool // the main process ended
	over    bool // nothing of it is left
	endedAt time.Time
	output  bool // its stdout and stderr are pipes to tend
}

func (r *modelTreeRun) Pid() int { return r.leader }

func (r *modelTreeRun) Signal(sig unix.Signal) {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	for pid, p := range r.members {
		r.f.signalLocked(pid, p, sig)
	}
}

func (r *modelTreeRun) Kill() { r.Signal(unix.SIGKILL) }

func (r *modelTreeRun) Tracking() (tree.Mechanism, string) { return tree.Session, "" }

// modelFake stands in for the reaper and the tracker. Services' processes
// end when the test says, or on their stop signal unless they ignore it, or
// on SIGKILL. It records what a real system would show as wrong: two
// generations of one service at once, or a service stopped with a signal
// that is not its own.
type modelFake struct {
	mu         sync.Mutex
	next       int
	live       map[int]*modelProc
	starts     map[string]int
	stubborn   map[string]bool
	unhealthy  map[string]bool
	forkFails  int
	violations []string
	ended      []*modelTreeRun // runs that are over, for the output bound
	mainFails  bool            // the main program cannot start
	mainPid    int
}

func newModelFake() *modelFake {
	return &modelFake{next: 1000, live: map[int]*modelProc{}, starts: map[string]int{}, stubborn: map[string]bool{}, unhealthy: map[string]bool{}}
}

// Start runs a check (its result at once) or the main program.
func (f *modelFake) Start(cmd reaper.Cmd, onExit func(reaper.Exit)) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.forkFails > 0 {
		f.forkFails--
		return 0, fmt.Errorf("fork: %w", unix.EAGAIN)
	}
	f.next++
	switch cmd.Args[0] {
	case "check":
		code := 0
		if f.unhealthy[cmd.Args[1]] {
			code = 1
		}
		onExit(reaper.Exit{Pid: f.next, Status: unix.WaitStatus(code << 8), At: time.Now()})
	case "main":
		f.live[f.next] = &modelProc{stopSig: unix.SIGTERM, pgid: f.next, onExit: onExit}
		f.mainPid = f.next
	}
	return f.next, nil
}

// StartService starts a run whose shape the command says: "plain", or
// "workers" (a worker beside the main process), or "daemon" (the main
// process forks a worker and exits at once, as a double-forking daemon
// does), each worker in the group or out of it ("left").
func (f *modelFake) StartService(name string, cmd reaper.Cmd, w tree.Watch) (ServiceRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.forkFails > 0 {
		f.forkFails--
		return nil, fmt.Errorf("fork: %w", unix.EAGAIN)
	}
	for pid, p := range f.live {
		if p.name == name {
			f.violations = append(f.violations, fmt.Sprintf("service %s started while process %d of an earlier run still runs", name, pid))
		}
	}
	f.next++
	sig, _ := signals.Parse(cmd.Args[3])
	run := &modelTreeRun{f: f, name: name, leader: f.next, stopSig: sig, members: map[int]*modelProc{}, watch: w, news: make(chan func(), 8)}
	go func() {
		for fn := range run.news {
			fn()
		}
	}()
	leader := &modelProc{name: name, stopSig: sig, pgid: f.next, run: run, isLeader: true, ignores: f.stubborn[name]}
	f.live[f.next], run.members[f.next] = leader, leader
	f.starts[name]++
	if len(cmd.Files) == 3 && cmd.Files[1] > 2 && cmd.Files[1] != cmd.Files[2] {
		// A line on each stream, then the pipes close at once: a pump
		// reading a pipe that is still open is in a system call, which
		// synctest cannot wait for. The pumps then block, if at all, only
		// on a stalled output, which is what the model is after.
		run.output = true
		for _, fd := range cmd.Files[1:3] {
			_, _ = unix.Write(int(fd), []byte("started\n"))
		}
	}
	shape := cmd.Args[4]
	if shape != "plain" {
		f.spawnLocked(run, strings.HasSuffix(shape, "left"), strings.Contains(shape, "stubborn"))
	}
	if strings.HasPrefix(shape, "daemon") {
		f.endLocked(run.leader, 0)
	}
	return run, nil
}

func (f *modelFake) ForgetService(string) {}

// spawnLocked makes a worker of run.
func (f *modelFake) spawnLocked(run *modelTreeRun, leftGroup, ignores bool) {
	f.next++
	p := &modelProc{name: run.name, stopSig: run.stopSig, pgid: run.leader, run: run, ignores: ignores || f.stubborn[run.name]}
	if leftGroup {
		p.pgid = f.next
	}
	f.live[f.next], run.members[f.next] = p, p
}

// Signal is the reaper's: one process, or a process group.
func (f *modelFake) Signal(pid int, sig unix.Signal, group bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !group {
		p, ok := f.live[pid]
		if !ok {
			return unix.ESRCH
		}
		f.signalLocked(pid, p, sig)
		return nil
	}
	found := false
	for member, p := range f.live {
		if p.pgid == pid {
			found = true
			f.signalLocked(member, p, sig)
		}
	}
	if !found {
		return unix.ESRCH
	}
	return nil
}

func (f *modelFake) signalLocked(pid int, p *modelProc, sig unix.Signal) {
	switch {
	case sig == unix.SIGKILL:
		f.endLocked(pid, unix.WaitStatus(sig))
	case sig == unix.SIGUSR1:
	case sig == p.stopSig:
		if !p.ignores {
			f.endLocked(pid, unix.WaitStatus(sig))
		}
	default:
		if p.name != "" {
			f.violations = append(f.violations, fmt.Sprintf("service %s was sent %s; its process's stop signal is %s", p.name, signals.Name(sig), signals.Name(p.stopSig)))
		}
	}
}

// endLocked ends a process and tells its owner what a real tracker would.
func (f *modelFake) endLocked(pid int, ws unix.WaitStatus) {
	p := f.live[pid]
	if p == nil {
		return
	}
	delete(f.live, pid)
	e := reaper.Exit{Pid: pid, Status: ws, At: time.Now()}
	if p.run == nil {
		p.onExit(e)
		return
	}
	run := p.run
	delete(run.members, pid)
	left := len(run.members)
	switch {
	case p.isLeader:
		run.gone = true
		run.news <- func() { run.watch.Exited(e, left) }
	case run.gone && left == 0:
		run.news <- func() { run.watch.Emptied() }
	}
	if run.gone && left == 0 {
		run.over, run.endedAt = true, time.Now()
		close(run.news)
		f.ended = append(f.ended, run)
	}
}

func (f *modelFake) servicePidsLocked() []int {
	var pids []int
	for pid, p := range f.live {
		if p.name != "" {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids
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

// modelWriter is tend's stdout or stderr: it stalls while stalled is set,
// as a pipe nobody reads.
type modelWriter struct {
	mu      sync.Mutex
	stalled bool
	moved   chan struct{} // closed when stalled is cleared
}

func newModelWriter() *modelWriter { return &modelWriter{moved: make(chan struct{})} }

func (w *modelWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	for w.stalled {
		moved := w.moved
		w.mu.Unlock()
		<-moved
		w.mu.Lock()
	}
	w.mu.Unlock()
	return len(b), nil
}

func (w *modelWriter) setStalled(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stalled && !on {
		close(w.moved)
		w.moved = make(chan struct{})
	}
	w.stalled = on
}

// genService makes a random definition of name that depends only on
// services before it in the config.
func genService(r *rand.Rand, name string, before []string) *config.Service {
	pick := func(xs ...time.Duration) time.Duration { return xs[r.IntN(len(xs))] }
	stop := []string{"TERM", "INT"}[r.IntN(2)]
	sig, _ := signals.Parse(stop)
	s := &config.Service{
		Name:             name,
		Command:          []string{"svc", name, strconv.Itoa(r.IntN(2)), stop, modelShapes[r.IntN(len(modelShapes))]},
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
	switch r.IntN(20) {
	case 0:
		s.Output = "/nonexistent-dir/out.log" // its set-up fails: the launch fails
	case 1, 2, 3, 4:
		s.Output = "prefix" // real pipes and pumps, into an output that may stall
	}
	for _, b := range before {
		if r.IntN(3) == 0 {
			s.DependsOn = append(s.DependsOn, b)
		}
	}
	s.Manual = r.IntN(8) == 0
	check := func(health bool) *config.Check {
		c := &config.Check{Kind: config.CheckExec, Exec: []string{"check", name}, Interval: 300 * time.Millisecond, Timeout: 100 * time.Millisecond, Threshold: 1 + r.IntN(2)}
		if health {
			c.Interval = 2 * time.Second
			c.OnFailure = []config.OnFailure{config.FailRestart, config.FailRestart, config.FailRestart, config.FailIgnore, config.FailIgnore, config.FailShutdown}[r.IntN(6)]
		} else {
			c.Period = pick(0, time.Second, 3*time.Second)
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

// modelShapes are the process trees a service's run can have.
var modelShapes = []string{"plain", "plain", "plain", "workers", "workers-left", "workers-stubborn", "workers-stubborn-left", "daemon", "daemon-left", "daemon-stubborn-left"}

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
	stepSpawn
	stepStall
	stepMainExit
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
			onFailure := config.OnFailure("")
			if sv.Health != nil {
				onFailure = sv.Health.OnFailure
			}
			parts = append(parts, fmt.Sprintf("%s(%s %s dep=%v ready=%v health=%v/%s ess=%v one=%v manual=%v)", name, sv.Restart, sv.Command[2:], sv.DependsOn, sv.Ready != nil, sv.Health != nil, onFailure, sv.Essential, sv.Oneshot, sv.Manual))
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
	case stepSpawn:
		return fmt.Sprintf("process #%d forks a worker (%s)", s.n, []string{"in its group", "that leaves its group", "that ignores its stop signal"}[s.n%3])
	case stepStall:
		return "tend's output stalls or moves again"
	case stepMainExit:
		return fmt.Sprintf("the main program exits with %s", modelStatuses[s.n%len(modelStatuses)].name)
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
		case w < 45:
			st.kind = stepExit
		case w < 50:
			st.kind = []stepKind{stepSpawn, stepSpawn, stepSpawn, stepStall, stepMainExit}[r.IntN(5)]
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

	out      *modelWriter // tend's stdout and stderr
	mainMode int
	endedAt  time.Time          // when Run returned
	asked    map[EndReason]bool // the end reasons the sequence gave tend
	held     map[string]int     // services an operator stopped: their starts then
	// madeUnhealthy: services whose checks the sequence made fail, ever.
	madeUnhealthy map[string]bool
	restarts      map[string]int
	records       map[string]*service
	resetOK       map[string]bool
	errs          []string
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
func runModel(t *testing.T, seed uint64, initial *config.Config, steps []modelStep, verbose bool) (errs []string) {
	synctest.Test(t, func(t *testing.T) {
		errs = runModelInBubble(modelMainOf(seed), initial, steps, verbose, t)
	})
	return errs
}

func runModelInBubble(mainMode int, initial *config.Config, steps []modelStep, verbose bool, t *testing.T) []string {
	log := logrus.New()
	log.Out = io.Discard
	log.Level = logrus.PanicLevel
	if verbose {
		log.Out, log.Level = os.Stderr, logrus.DebugLevel
	}
	m := &modelRun{
		fake: newModelFake(), sigs: make(chan Order, 4), done: make(chan struct{}), mainMode: mainMode,
		configs: map[*config.Config][]string{}, asked: map[EndReason]bool{},
		held: map[string]int{}, madeUnhealthy: map[string]bool{}, restarts: map[string]int{}, records: map[string]*service{}, resetOK: map[string]bool{},
	}
	m.remember(initial)
	m.holdManual(initial, nil)
	m.out = newModelWriter()
	opt := Options{Launcher: m.fake, Log: log, Sink: NewSink(m.out, m.out, "text"),
		LoadConfig: func() (*config.Config, error) {
			if m.hangup == nil {
				return nil, errors.New("model.toml:1: invalid")
			}
			return m.hangup, nil
		}}
	switch mainMode {
	case 0:
		opt.StartMain = func(onExit func(reaper.Exit)) (int, error) {
			return m.fake.Start(reaper.Cmd{Args: []string{"main"}}, onExit)
		}
	case 1:
		opt.StartMain = func(func(reaper.Exit)) (int, error) {
			return 0, &reaper.StartError{Name: "/no/such/program", Code: reaper.CodeNotFound, Err: errors.New("no such file or directory")}
		}
	}
	m.sup = New(initial, opt)
	go func() {
		defer close(m.done)
		defer func() {
			if m.panic = recover(); m.panic != nil && os.Getenv("TEND_MODEL_STACK") != "" {
				fmt.Fprintf(os.Stderr, "%v\n%s", m.panic, debug.Stack())
			}
		}()
		m.code = m.sup.Run(m.sigs)
		m.endedAt = time.Now()
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
	m.out.setStalled(false)
	for _, pid := range m.fake.livePids() {
		m.fake.mu.Lock()
		m.fake.endLocked(pid, unix.WaitStatus(unix.SIGKILL))
		m.fake.mu.Unlock()
	}
	synctest.Wait()
	time.Sleep(time.Minute) // pumps and the sink's writers finish
	synctest.Wait()
	return m.errs
}

// holdManual: a service with autostart = false that a config brings in
// (new, or added again after a removal) is started by an operator or not
// at all; m.held checks that after every step.
func (m *modelRun) holdManual(cfg *config.Config, known map[string]bool) {
	m.fake.mu.Lock()
	defer m.fake.mu.Unlock()
	for name, spec := range cfg.Services {
		if spec.Manual && !known[name] {
			m.held[name] = m.fake.starts[name]
		}
	}
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
	case stepExit, stepSpawn:
		m.fake.mu.Lock()
		if pids := m.fake.servicePidsLocked(); len(pids) > 0 {
			pid := pids[st.n%len(pids)]
			if st.kind == stepExit {
				m.fake.endLocked(pid, modelStatuses[st.n%len(modelStatuses)].ws)
			} else {
				m.fake.spawnLocked(m.fake.live[pid].run, st.n%3 == 1, st.n%3 == 2)
			}
		}
		m.fake.mu.Unlock()
	case stepStall:
		m.out.mu.Lock()
		stalled := m.out.stalled
		m.out.mu.Unlock()
		m.out.setStalled(!stalled)
	case stepMainExit:
		m.fake.mu.Lock()
		if _, ok := m.fake.live[m.fake.mainPid]; ok {
			m.fake.endLocked(m.fake.mainPid, modelStatuses[st.n%len(modelStatuses)].ws)
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
		known := map[string]bool{}
		if !m.sup.Do(func() {
			for name, svc := range m.sup.services {
				known[name] = svc.goal != GoalRemoved
			}
		}) {
			known = nil // finished: nothing starts any more
		}
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
		if known != nil {
			m.holdManual(st.cfg, known)
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
		if st.kind == stepHealth && flags[name] {
			m.madeUnhealthy[name] = true
		}
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
		hasRun := svc.state == Running || svc.state == Stopping
		if hasRun != (svc.run != nil) || (svc.pid != 0 && svc.run == nil) || (svc.state == Running && svc.pid == 0) {
			m.fail("%s: %s is %s with pid %d and run %v", where, svc.name, svc.state, svc.pid, svc.run != nil)
		}
		if svc.state == Stopping && time.Since(svc.since) > svc.runSpec.StopTimeout+time.Second {
			m.fail("%s: %s is still stopping %s after it began; stop_timeout is %s", where, svc.name, time.Since(svc.since), svc.runSpec.StopTimeout)
		}
		if svc.pid != 0 {
			if p, ok := m.fake.live[svc.pid]; !ok || p.name != svc.name || !p.isLeader {
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
	// A service is its whole process tree: every process alive belongs to
	// the run tend keeps for its service, so a service without a run
	// (stopped, restarting, …) has no process at all.
	outputs := 0
	runs := map[*modelTreeRun]bool{}
	for pid, p := range m.fake.live {
		if p.name == "" {
			continue
		}
		runs[p.run] = true
		if svc := s.services[p.name]; svc == nil || svc.run != ServiceRun(p.run) {
			state := State("forgotten")
			if svc != nil {
				state = svc.state
			}
			m.fail("%s: process %d of %s runs, and tend does not count it as the service's (%s)", where, pid, p.name, state)
		}
	}
	// Output: pumps live only while their run does, or a bounded time
	// after it (a stalled output's grace), whatever the number of runs.
	for run := range runs {
		if run.output {
			outputs += 2
		}
	}
	for _, run := range m.fake.ended {
		if run.output && time.Since(run.endedAt) <= stallLimit+time.Second {
			outputs += 2
		}
	}
	if n := s.opt.Sink.livePumps(); n > outputs {
		m.fail("%s: %d output pumps are alive; the runs alive or just ended account for %d", where, n, outputs)
	}
	// tend's own lifecycle never waits on nothing.
	if s.life.Phase == PhaseMain && s.main == nil {
		m.fail("%s: the shutdown waits for a main program that is not running (%s)", where, s.life.Main)
	}
	if s.life.Phase == PhaseLevels && s.deps.highestLive() < 0 {
		m.fail("%s: the shutdown waits with no service left to stop", where)
	}
	if _, alive := m.fake.live[m.fake.mainPid]; alive != (s.main != nil) {
		m.fail("%s: the main program is alive %v, tend thinks %v", where, alive, s.main != nil)
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
	if !s.shutdownAt.IsZero() && m.endedAt.Sub(s.shutdownAt) > s.cfg.ShutdownTimeout+time.Second {
		m.fail("the shutdown took %s; shutdown_timeout is %s", m.endedAt.Sub(s.shutdownAt), s.cfg.ShutdownTimeout)
	}
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
	case EndCheck:
		shutdown := false
		for cfg := range m.configs {
			for name, spec := range cfg.Services {
				if spec.Health != nil && spec.Health.OnFailure == config.FailShutdown && m.madeUnhealthy[name] {
					shutdown = true
				}
			}
		}
		if !shutdown {
			m.fail("tend ended for a health check with on_failure = shutdown, and no such check failed")
		}
	case EndMain, EndNotReady:
		if m.mainMode > 1 {
			m.fail("tend ended for %q, and it has no main program", why)
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
	// A small output queue, so that a stalled output fills it with the
	// few lines the fake's runs write.
	saved := outQueueBytes
	outQueueBytes = 48
	t.Cleanup(func() { outQueueBytes = saved })
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
	errs := runModel(t, seed, initial, steps, verbose)
	if len(errs) == 0 {
		return
	}
	keep := shrink(t, seed)
	initial, steps = genModel(seed)
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d (replay: TEND_MODEL_SEED=%d go test -run TestModel -v ./supervise)\n", seed, seed)
	fmt.Fprintf(&b, "initial config: %s\n", modelStep{kind: stepReload, cfg: initial})
	fmt.Fprintf(&b, "main program: %s\n", []string{"one that runs", "one that cannot start", "none"}[min(modelMainOf(seed), 2)])
	fmt.Fprintf(&b, "shrunk from %d to %d steps:\n", len(steps), len(keep))
	for _, i := range keep {
		fmt.Fprintf(&b, "  %2d. %s\n", i, steps[i])
	}
	fmt.Fprintf(&b, "violations:\n  %s", strings.Join(errs, "\n  "))
	t.Fatal(b.String())
}

// modelMainOf says whether a seed's tend has a main program: 0 one that
// runs, 1 one that cannot start, else none.
func modelMainOf(seed uint64) int {
	return rand.New(rand.NewPCG(seed, 1)).IntN(6)
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
		return len(runModel(t, seed, initial, sub, false)) > 0
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
