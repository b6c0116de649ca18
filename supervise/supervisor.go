package supervise

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
)

// Launcher starts and signals processes; the reaper in production, a fake
// in unit tests.
type Launcher interface {
	Start(reaper.Cmd) (int, <-chan reaper.Exit, error)
	Signal(pid int, sig unix.Signal, group bool) error
}

// Options is what the supervisor needs besides the config.
type Options struct {
	Launcher  Launcher
	Log       *logrus.Logger
	Sink      *Sink
	Rewrite   signals.Rewrite
	ExitRemap map[int]bool
	// StartMain starts the main program (after --), or is nil when there is
	// none. It is given to the supervisor so the terminal handling stays in
	// one place.
	StartMain func() (int, <-chan reaper.Exit, error)
	KillGroup bool // forward signals to the main program's process group
	// Panics delivers panics recovered in other goroutines; each one shuts
	// tend down. Nil means none are watched.
	Panics <-chan error
	// LoadConfig reads the config file again, for a reload; nil when there
	// is no file to read.
	LoadConfig func() (*config.Config, error)
}

// Supervisor runs the services of one config. All its state is owned by the
// goroutine in Run; everything else talks to it through the inbox.
type Supervisor struct {
	opt      Options
	cfg      *config.Config
	log      *logrus.Logger
	services map[string]*service
	inbox    inbox
	now      func() time.Time

	main        *mainProgram
	mainDone    bool // the main program ran and exited
	mainFailed  bool // the main program could not be started
	readyTimer  *time.Timer
	shutdown    bool
	shutdownAt  time.Time
	deadline    *time.Timer
	exitCode    int
	exitDecided bool
	finished    bool
}

type mainProgram struct {
	pid int
}

// New prepares a supervisor for cfg; Run starts it.
func New(cfg *config.Config, opt Options) *Supervisor {
	s := &Supervisor{opt: opt, cfg: cfg, log: opt.Log, services: map[string]*service{}, now: time.Now}
	s.inbox.init()
	for _, name := range cfg.Order {
		s.services[name] = newService(cfg.Services[name])
	}
	s.assignLevels()
	return s
}

// Run supervises until tend should exit and returns the exit status. The
// caller then terminates leftovers and waits for the output to drain.
func (s *Supervisor) Run(sigs <-chan os.Signal) int {
	s.log.Infof("supervising %d service(s) from %s", len(s.services), s.cfg.Path)
	if s.opt.StartMain != nil {
		s.readyTimer = time.AfterFunc(s.cfg.ReadyTimeout, func() { s.inbox.post(readyTimeout{}) })
	}
	s.progress()
	for !s.finished {
		select {
		case sig := <-sigs:
			s.onSignal(sig.(syscall.Signal))
		case <-s.inbox.wake:
			for _, e := range s.inbox.drain() {
				s.handle(e)
			}
		case err := <-s.opt.Panics:
			s.log.Errorf("%v; shutting down", err)
			s.decideExit(1)
			s.beginShutdown(unix.SIGTERM, "internal error")
		}
		s.progress()
	}
	if s.readyTimer != nil {
		s.readyTimer.Stop()
	}
	if s.deadline != nil {
		s.deadline.Stop()
	}
	return s.exitCode
}

// Remaining is what is left of shutdown_timeout, the leftovers' grace.
func (s *Supervisor) Remaining() time.Duration {
	if s.shutdownAt.IsZero() {
		return s.cfg.ShutdownTimeout
	}
	return max(0, s.cfg.ShutdownTimeout-s.now().Sub(s.shutdownAt))
}

// events posted to the inbox.
type (
	exited struct {
		svc  *service
		pid  int
		exit reaper.Exit
	}
	mainExited struct{ exit reaper.Exit }
	timerFired struct {
		svc *service
		gen int
	}
	stopTimeout struct {
		svc *service
		pid int
	}
	readyTimeout  struct{}
	readyDeadline struct {
		svc *service
		gen int
	}
	shutdownExpiry struct{}
	request        struct {
		fn   func()
		done chan struct{}
	}
)

func (s *Supervisor) handle(e any) {
	switch e := e.(type) {
	case exited:
		s.onExit(e.svc, e.pid, e.exit)
	case mainExited:
		s.onMainExit(e.exit)
	case timerFired:
		if e.gen == e.svc.gen {
			s.onTimer(e.svc)
		}
	case stopTimeout:
		if e.svc.pid == e.pid && e.svc.state == Stopping {
			e.svc.logger(s.log).Warnf("still running %s after %s: sending SIGKILL to its process group", signals.Name(e.svc.spec.StopSignal), e.svc.spec.StopTimeout)
			_ = s.opt.Launcher.Signal(e.pid, unix.SIGKILL, true)
		}
	case readyTimeout:
		if s.main == nil && !s.mainDone && !s.shutdown {
			s.log.Errorf("services not ready after ready_timeout %s: %v", s.cfg.ReadyTimeout, s.notReady())
			s.decideExit(1)
			s.beginShutdown(unix.SIGTERM, "ready_timeout")
		}
	case shutdownExpiry:
		s.log.Warnf("shutdown_timeout %s expired: killing everything", s.cfg.ShutdownTimeout)
		s.killAll()
	case request:
		e.fn()
		close(e.done)
	case probeDue:
		s.onProbeDue(e)
	case checkResult:
		s.onCheckResult(e)
	case notifyMsg:
		s.onNotify(e)
	case readyDeadline:
		if e.gen == e.svc.checkGen && e.svc.state == Running && !e.svc.ready {
			s.failRun(e.svc, fmt.Sprintf("not ready within ready_timeout %s", s.cfg.ReadyTimeout))
		}
	}
}

// Do runs fn on the supervisor's goroutine and waits for it: the way the
// control API reads and changes state without sharing it.
func (s *Supervisor) Do(fn func()) bool {
	done := make(chan struct{})
	s.inbox.post(request{fn: fn, done: done})
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

func (s *Supervisor) onSignal(received unix.Signal) {
	action, sig := signals.Route(signals.Supervisor, s.opt.Rewrite, received)
	switch action {
	case signals.Shutdown:
		if s.shutdown {
			// The second SIGTERM/SIGINT: the operator will not wait.
			s.log.Warnf("%s during shutdown: killing everything now", signals.Name(sig))
			s.killAll()
			return
		}
		s.beginShutdown(sig, signals.Name(sig))
	case signals.Reload:
		// Already on the supervisor's goroutine: load and apply here.
		if s.opt.LoadConfig == nil {
			return
		}
		cfg, err := s.opt.LoadConfig()
		if err != nil {
			s.log.Errorf("reload on %s: the config is invalid, nothing changed:\n%v", signals.Name(sig), err)
			return
		}
		if err := s.apply(cfg); err != nil {
			s.log.Errorf("reload on %s: %v", signals.Name(sig), err)
		}
	case signals.Forward:
		if s.main != nil {
			_ = s.opt.Launcher.Signal(s.main.pid, sig, s.opt.KillGroup)
			return
		}
		for _, name := range s.cfg.Order {
			if svc := s.services[name]; svc.pid != 0 {
				_ = s.opt.Launcher.Signal(svc.pid, sig, false)
			}
		}
	}
}

// progress does whatever has become possible: start services whose
// dependencies are ready, start the main program, advance a shutdown, or
// notice that nothing is left to do.
func (s *Supervisor) progress() {
	s.forgetRetired()
	if s.shutdown {
		s.advanceShutdown()
		return
	}
	for _, name := range s.cfg.Order {
		svc := s.services[name]
		if svc.state != Idle || svc.blocked != "" || svc.heldByOperator {
			continue
		}
		if why := s.dependencyFailed(svc); why != "" {
			svc.blocked = why
			svc.logger(s.log).Errorf("not started: %s", why)
			if svc.spec.Essential {
				s.decideExit(1)
				s.beginShutdown(unix.SIGTERM, "essential service "+svc.spec.Name+" cannot start")
				return
			}
			continue
		}
		if s.dependenciesReady(svc) {
			s.start(svc, "dependencies ready")
		}
	}
	if s.opt.StartMain != nil && s.main == nil && !s.mainDone && !s.mainFailed && s.allReady() {
		s.startMain()
	}
	if s.settled() {
		if !s.exitDecided {
			s.decideExit(s.cleanStatus())
		}
		s.finished = true
	}
}

func (s *Supervisor) dependencyFailed(svc *service) string {
	for _, dep := range svc.spec.DependsOn {
		d := s.services[dep]
		if d.gaveUp() {
			return fmt.Sprintf("dependency %s %s", dep, d.gaveUpReason())
		}
		if d.blocked != "" {
			return fmt.Sprintf("dependency %s was not started", dep)
		}
	}
	return ""
}

func (s *Supervisor) dependenciesReady(svc *service) bool {
	for _, dep := range svc.spec.DependsOn {
		if !s.services[dep].isReady() {
			return false
		}
	}
	return true
}

func (s *Supervisor) allReady() bool {
	for _, svc := range s.services {
		if !svc.isReady() && !svc.retired {
			return false
		}
	}
	return true
}

func (s *Supervisor) notReady() []string {
	var names []string
	for _, name := range s.cfg.Order {
		if svc := s.services[name]; !svc.isReady() {
			names = append(names, fmt.Sprintf("%s (%s)", name, svc.describe()))
		}
	}
	return names
}

// settled: no main program to wait for, and no service running or due to
// run again.
func (s *Supervisor) settled() bool {
	if s.opt.StartMain != nil && !s.mainDone && !s.mainFailed {
		return false
	}
	for _, svc := range s.services {
		switch svc.state {
		case Stopped, MaxRestartsReached:
		case Idle:
			if svc.blocked == "" && !svc.heldByOperator {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// cleanStatus is the exit status without a main program: 0 when every
// service ended cleanly (a stop tend or an operator asked for is clean).
func (s *Supervisor) cleanStatus() int {
	for _, name := range s.cfg.Order {
		if svc := s.services[name]; !svc.endedClean() {
			s.log.Infof("exit status 1: %s %s", name, svc.describe())
			return 1
		}
	}
	return 0
}

// decideExit records the exit status; the first decision wins, except that
// the main program's status always does.
func (s *Supervisor) decideExit(code int) {
	if s.exitDecided {
		return
	}
	s.exitCode, s.exitDecided = code, true
}

func (s *Supervisor) startMain() {
	if s.readyTimer != nil {
		s.readyTimer.Stop()
	}
	pid, exits, err := s.opt.StartMain()
	if err != nil {
		s.log.Error(err)
		s.mainFailed = true
		s.exitCode, s.exitDecided = reaper.ExitCode(err), true
		s.beginShutdown(unix.SIGTERM, "main program could not start")
		return
	}
	s.main = &mainProgram{pid: pid}
	s.log.Infof("main program started as process %d", pid)
	guard.Go("main program watch", func() { s.inbox.post(mainExited{<-exits}) })
}

func (s *Supervisor) onMainExit(e reaper.Exit) {
	s.log.Infof("main program ended: %s", e)
	s.main, s.mainDone = nil, true
	code := e.Code()
	if s.opt.ExitRemap[code] {
		code = 0
	}
	// The main program decides tend's status, even over an essential
	// service that gave up first.
	s.exitCode, s.exitDecided = code, true
	s.beginShutdown(unix.SIGTERM, "main program ended")
}

// beginShutdown stops everything: the main program first, then services in
// reverse dependency order (advanceShutdown), within shutdown_timeout.
func (s *Supervisor) beginShutdown(sig unix.Signal, why string) {
	if s.shutdown {
		return
	}
	s.shutdown, s.shutdownAt = true, s.now()
	s.log.Infof("shutting down (%s)", why)
	s.deadline = time.AfterFunc(s.cfg.ShutdownTimeout, func() { s.inbox.post(shutdownExpiry{}) })
	for _, svc := range s.services {
		svc.cancelTimer()
		switch svc.state {
		case Restarting, CrashLoopBackoff:
			s.setState(svc, Stopped, "shutdown")
			svc.stoppedByTend = true
		}
	}
	if s.main != nil {
		_ = s.opt.Launcher.Signal(s.main.pid, sig, s.opt.KillGroup)
	}
}

// advanceShutdown stops the highest dependency level that still runs, all
// of its services at once, once the main program is gone.
func (s *Supervisor) advanceShutdown() {
	if s.main != nil {
		return
	}
	level := -1
	for _, svc := range s.services {
		if (svc.state == Running || svc.state == Stopping) && svc.level > level {
			level = svc.level
		}
	}
	if level < 0 {
		if !s.exitDecided {
			s.decideExit(s.cleanStatus())
		}
		s.finished = true
		return
	}
	for _, name := range s.cfg.Order {
		if svc := s.services[name]; svc.level == level && svc.state == Running {
			s.stop(svc, "shutdown")
		}
	}
}

func (s *Supervisor) killAll() {
	if s.main != nil {
		_ = s.opt.Launcher.Signal(s.main.pid, unix.SIGKILL, true)
	}
	for _, svc := range s.services {
		if svc.pid != 0 {
			_ = s.opt.Launcher.Signal(svc.pid, unix.SIGKILL, true)
		}
	}
}

// start runs a service's process now.
func (s *Supervisor) start(svc *service, why string) {
	svc.cancelTimer()
	files, err := s.outputFiles(svc)
	if err != nil {
		svc.logger(s.log).Errorf("cannot set up output: %v", err)
		s.onExit(svc, 0, reaper.Exit{Status: unix.WaitStatus(1 << 8), At: s.now()})
		return
	}
	cmd := reaper.Cmd{
		Args:  svc.spec.Command,
		Env:   svc.spec.Env,
		Dir:   svc.spec.WorkingDir,
		Files: files.fds(),
		Sys:   &syscall.SysProcAttr{Setpgid: true, Credential: credential(svc.spec)},
	}
	if r := svc.spec.Ready; r != nil && r.Kind == config.CheckNotify {
		if err := s.ensureNotify(svc); err != nil {
			svc.logger(s.log).Errorf("cannot open the notify socket: %v", err)
		} else {
			cmd.Env = append(append([]string(nil), cmd.Env...), "NOTIFY_SOCKET="+svc.notify.addr)
		}
	}
	svc.started = s.now()
	svc.runFailed = false
	pid, exits, err := s.opt.Launcher.Start(cmd)
	files.closeChildEnds()
	if err != nil {
		// The run fails at once; the restart policy decides the rest.
		files.closeParentEnds()
		code := reaper.ExitCode(err)
		svc.logger(s.log).Errorf("cannot start: %v", err)
		svc.state = Running // so that the exit below is judged as a run's end
		s.onExit(svc, 0, reaper.Exit{Status: unix.WaitStatus(code << 8), At: s.now()})
		return
	}
	files.pump(s.opt.Sink, svc.spec.Name)
	svc.pid = pid
	s.setState(svc, Running, fmt.Sprintf("%s, process %d", why, pid))
	guard.Go("exit watch of "+svc.spec.Name, func() { s.inbox.post(exited{svc: svc, pid: pid, exit: <-exits}) })
	s.startChecks(svc)
}

// startChecks begins a run's checks: readiness at once (a notify service
// reports by itself) with ready_timeout as its limit, then health once ready.
func (s *Supervisor) startChecks(svc *service) {
	svc.cancelChecks()
	svc.ready, svc.healthy, svc.healthFails, svc.failing = svc.spec.Ready == nil, true, 0, false
	r := svc.spec.Ready
	if r == nil {
		s.startHealth(svc)
		return
	}
	gen := svc.checkGen
	svc.readyTimer = time.AfterFunc(s.cfg.ReadyTimeout, func() { s.inbox.post(readyDeadline{svc: svc, gen: gen}) })
	if r.Kind != config.CheckNotify {
		s.runProbe(svc, readyCheck, r)
	}
}

func (s *Supervisor) startHealth(svc *service) {
	if h := svc.spec.Health; h != nil {
		s.scheduleProbe(svc, healthCheck, h, h.Interval)
	}
}

func (s *Supervisor) ensureNotify(svc *service) error {
	if svc.notify != nil {
		return nil
	}
	n, err := openNotify(svc.spec.Name)
	if err != nil {
		return err
	}
	svc.notify = n
	n.serve(svc, s.inbox.post)
	return nil
}

func (s *Supervisor) onProbeDue(e probeDue) {
	svc := e.svc
	if e.gen != svc.checkGen || svc.state != Running {
		return
	}
	c := svc.spec.Health
	if e.kind == readyCheck {
		c = svc.spec.Ready
	}
	s.runProbe(svc, e.kind, c)
}

func (s *Supervisor) onCheckResult(r checkResult) {
	svc := r.svc
	if r.gen != svc.checkGen || svc.state != Running {
		return // a result of an earlier run, or of a run being stopped
	}
	svc.cancelProbe = nil
	log := svc.logger(s.log)
	switch r.kind {
	case readyCheck:
		if r.err != nil {
			log.Debugf("not ready yet: %v", r.err)
			s.scheduleProbe(svc, readyCheck, svc.spec.Ready, svc.spec.Ready.Interval)
			return
		}
		s.becomeReady(svc, string(svc.spec.Ready.Kind)+" check passed")
	case healthCheck:
		h := svc.spec.Health
		if r.err == nil {
			if svc.healthFails > 0 || !svc.healthy {
				log.Infof("health check passes again")
			}
			svc.healthFails, svc.healthy = 0, true
		} else {
			svc.healthFails++
			log.Warnf("health check failed (%d of %d): %v", svc.healthFails, h.Threshold, r.err)
			if svc.healthFails >= h.Threshold {
				svc.healthy = false
				s.failRun(svc, fmt.Sprintf("health check failed %d times in a row", svc.healthFails))
				return
			}
		}
		s.scheduleProbe(svc, healthCheck, h, h.Interval)
	}
}

func (s *Supervisor) becomeReady(svc *service, why string) {
	if svc.ready {
		return
	}
	svc.ready = true
	if svc.readyTimer != nil {
		svc.readyTimer.Stop()
		svc.readyTimer = nil
	}
	svc.logger(s.log).Infof("ready: %s", why)
	s.startHealth(svc)
}

func (s *Supervisor) onNotify(m notifyMsg) {
	svc := m.svc
	log := svc.logger(s.log)
	if status, ok := m.fields["STATUS"]; ok && status != svc.notifyStatus {
		svc.notifyStatus = status
		log.Infof("status: %s", status)
	}
	if pid, ok := m.fields["MAINPID"]; ok {
		log.Infof("reports main process %s (tend keeps supervising process %d)", pid, svc.pid)
	}
	if m.fields["READY"] == "1" && svc.state == Running {
		s.becomeReady(svc, "READY=1 on the notify socket")
	}
}

// failRun stops a run that failed a check: its exit counts as unclean, and
// the restart policy decides what comes next.
func (s *Supervisor) failRun(svc *service, why string) {
	svc.logger(s.log).Errorf("%s: stopping it", why)
	svc.runFailed, svc.failing = true, true
	s.stop(svc, why)
}

// stop asks a running service to end: stop_signal to its process group,
// SIGKILL after stop_timeout.
func (s *Supervisor) stop(svc *service, why string) {
	svc.cancelTimer()
	svc.cancelChecks()
	svc.stoppedByTend = !svc.failing
	sig := svc.spec.StopSignal
	if err := s.opt.Launcher.Signal(svc.pid, sig, true); err != nil {
		svc.logger(s.log).Debugf("sending %s: %v", signals.Name(sig), err)
	}
	s.setState(svc, Stopping, fmt.Sprintf("%s: sent %s", why, signals.Name(sig)))
	pid := svc.pid
	svc.timer = time.AfterFunc(svc.spec.StopTimeout, func() { s.inbox.post(stopTimeout{svc: svc, pid: pid}) })
}

func (s *Supervisor) onExit(svc *service, pid int, e reaper.Exit) {
	if pid != 0 && pid != svc.pid {
		return
	}
	log := svc.logger(s.log)
	uptime := e.At.Sub(svc.started)
	svc.pid = 0
	svc.lastExit = &e
	svc.cancelTimer()
	svc.cancelChecks()
	failing := svc.failing
	svc.failing = false
	if svc.state == Stopping && !failing {
		s.setState(svc, Stopped, fmt.Sprintf("%s after %s", e, round(uptime)))
		svc.lastClean = true
		if svc.restartAfterStop && !s.shutdown {
			svc.restartAfterStop = false
			svc.reset()
			s.start(svc, "restart")
		}
		return
	}
	run := Run{Started: svc.started, Exit: e, Failed: svc.runFailed}
	var o Outcome
	svc.counters, o = AfterExit(RestartOf(svc.spec), svc.counters, run)
	svc.lastClean = o.Clean
	reason := fmt.Sprintf("%s after %s uptime; %s", e, round(o.Uptime), o.Reason)
	if svc.spec.Oneshot && o.Clean {
		svc.succeeded = true
	}
	switch o.State {
	case Restarting, CrashLoopBackoff:
		if s.shutdown {
			s.setState(svc, Stopped, reason+"; not restarted during shutdown")
			return
		}
		s.setState(svc, o.State, fmt.Sprintf("%s; next start in %s", reason, o.Delay))
		svc.gen++
		gen := svc.gen
		svc.timer = time.AfterFunc(o.Delay, func() { s.inbox.post(timerFired{svc: svc, gen: gen}) })
	default:
		s.setState(svc, o.State, reason)
		if svc.spec.Essential && (o.State == MaxRestartsReached || !o.Clean) {
			log.Errorf("essential service gave up: shutting down")
			s.decideExit(e.Code())
			s.beginShutdown(unix.SIGTERM, "essential service "+svc.spec.Name+" gave up")
		}
	}
}

func (s *Supervisor) onTimer(svc *service) {
	switch svc.state {
	case Restarting:
		s.start(svc, "backoff over")
	case CrashLoopBackoff:
		var next State
		svc.counters, next = AfterCrashLoop(RestartOf(svc.spec), svc.counters)
		if next == MaxRestartsReached {
			s.setState(svc, MaxRestartsReached, fmt.Sprintf("max_restarts %d reached", svc.spec.MaxRestarts))
			return
		}
		s.start(svc, "crash-loop backoff over")
	}
}

func (s *Supervisor) setState(svc *service, to State, why string) {
	from := svc.state
	svc.state = to
	svc.since = s.now()
	svc.logger(s.log).WithFields(logrus.Fields{"from": string(from), "to": string(to)}).Infof("%s → %s: %s", from, to, why)
}

// levels assigns each service its depth in the dependency graph; services
// on one level start and stop together.
func (s *Supervisor) assignLevels() {
	for _, name := range s.cfg.Order { // dependencies come first in Order
		svc := s.services[name]
		for _, dep := range svc.spec.DependsOn {
			svc.level = max(svc.level, s.services[dep].level+1)
		}
	}
}

func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// inbox is an unbounded queue: posting never blocks, so timers, exits and
// requests can never stall each other or the reaper.
type inbox struct {
	mu    sync.Mutex
	items []any
	wake  chan struct{}
}

func (q *inbox) init() { q.wake = make(chan struct{}, 1) }

func (q *inbox) post(e any) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *inbox) drain() []any {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// ErrUnknownService is returned for a name the config does not have.
var ErrUnknownService = errors.New("no such service")

// Operate applies an operator command to a service, on the supervisor's
// goroutine, and says why it was refused if it was.
func (s *Supervisor) Operate(name string, cmd Command) error {
	var err error
	if !s.Do(func() { err = s.operate(name, cmd) }) {
		return errors.New("the supervisor did not answer")
	}
	return err
}

func (s *Supervisor) operate(name string, cmd Command) error {
	svc, ok := s.services[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownService, name)
	}
	if s.shutdown {
		return fmt.Errorf("%w: tend is shutting down", ErrConflict)
	}
	why := "operator " + string(cmd)
	switch React(svc.state, cmd) {
	case Refuse:
		return fmt.Errorf("%w: %s is %s, it cannot %s now", ErrConflict, name, svc.state, cmd)
	case Nothing:
	case StartFresh:
		svc.reset()
		fallthrough
	case StartNow:
		svc.heldByOperator, svc.blocked = false, ""
		s.start(svc, why)
	case CancelDelay:
		svc.cancelTimer()
		svc.heldByOperator, svc.stoppedByTend = true, true
		s.setState(svc, Stopped, why)
	case SignalStop:
		svc.heldByOperator = true
		s.stop(svc, why)
	case StopThenRun:
		svc.restartAfterStop = true
		s.stop(svc, why)
	}
	return nil
}

// Redefine gives a service a new definition from a reload. Only restart
// settings changed: they apply from the next exit and the process is left
// alone. Anything else: the service is restarted at once with the new
// definition, unless an operator holds it stopped. It reports whether the
// process was restarted.
func (s *Supervisor) redefine(name string, spec *config.Service) (restarted bool) {
	svc := s.services[name]
	old := svc.spec
	svc.spec = spec
	if spec.Equal(old) || spec.RestartSettingsOnlyChanged(old) {
		return false
	}
	switch svc.state {
	case Running:
		svc.restartAfterStop = true
		s.stop(svc, "definition changed")
		return true
	case Restarting, CrashLoopBackoff:
		s.start(svc, "definition changed")
		return true
	}
	return false
}
