package supervise

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/reaper"
)

// progress does whatever has become possible after a batch of events:
// start services whose dependencies are ready, start the main program,
// advance a shutdown, or notice that nothing is left to do. The shutdown
// is fed Progress until it stands still, so a step that ends at once (a
// main program that never ran, a level with nothing left) moves it on in
// the same pass.
func (s *Supervisor) progress() {
	if s.life.Phase == PhaseRunning {
		s.startWhatCan()
	}
	if s.life.Phase == PhaseRunning && s.deps.readyMaybe {
		s.deps.readyMaybe = false
		if s.life.Main == MainWaiting && s.allReady() {
			s.lifeEvent(AllReady, Facts{})
		}
	}
	if s.life.Phase == PhaseRunning && s.deps.finalMaybe {
		s.deps.finalMaybe = false
		if s.settled() {
			s.lifeEvent(Settled, Facts{Code: s.cleanStatus()})
		}
	}
	for s.life.Phase == PhaseMain || s.life.Phase == PhaseLevels {
		before := s.life
		f := Facts{MainAlive: s.main != nil, HighestLive: s.deps.highestLive()}
		if f.HighestLive < 0 && !s.life.Set {
			f.Clean = s.cleanStatus()
		}
		s.lifeEvent(Progress, f)
		if s.life == before {
			break
		}
	}
}

// lifeEvent asks decideLife what tend does about e and carries it out.
func (s *Supervisor) lifeEvent(e LifeEvent, f Facts) {
	var fx LifeEffects
	s.life, fx = decideLife(s.life, e, f)
	if fx.BeginStop {
		s.beginShutdown()
	}
	if fx.SignalMain && s.main != nil {
		_ = s.opt.Launcher.Signal(s.main.pid, s.shutdownSignal, s.opt.KillGroup)
	}
	if fx.Log != "" {
		switch {
		case fx.KillAll:
			s.log.Warn(fx.Log)
		default:
			s.emit(Happening{Kind: KindShutdown, Reason: fx.Log})
		}
	}
	if fx.StartMain {
		s.startMain()
	}
	if fx.StopLevel {
		for _, svc := range s.order {
			if svc.level == s.life.Level && svc.state == Running {
				s.event(svc, ShutdownTurn, "")
			}
		}
	}
	if fx.KillAll {
		s.killAll()
	}
	if fx.Leftovers {
		s.stopLeftovers()
	}
	if s.life.Phase == PhaseDone {
		s.finished = true
	}
}

// settled: every service ended by itself with nothing to start it again
// (SPEC section 6). Services an operator stopped or a reload removed keep
// tend running, and so does a config left with no service at all. The main
// program, if any, is decideLife's to weigh.
func (s *Supervisor) settled() bool {
	if len(s.order) == 0 {
		return false
	}
	for _, svc := range s.order {
		if !svc.final() {
			return false
		}
	}
	return true
}

// cleanStatus is the exit status without a main program: 0 when every
// service ended cleanly (a stop tend or an operator asked for is clean).
func (s *Supervisor) cleanStatus() int {
	for _, svc := range s.order {
		if !svc.endedClean() {
			s.log.Infof("exit status 1: %s %s", svc.name, svc.describe())
			return 1
		}
	}
	return 0
}

// noticeEssential is the one place where an essential service's end is
// weighed: it ended tend's run when it gave up for good.
func (s *Supervisor) noticeEssential(svc *service) {
	if !svc.spec.Essential || svc.goal != GoalRun || s.life.Phase != PhaseRunning {
		return
	}
	code := 1
	if svc.lastExit != nil && svc.lastExit.Code() != 0 {
		code = svc.lastExit.Code()
	}
	switch {
	case svc.state == MaxRestartsReached, svc.state == Stopped && !svc.lastClean:
		svc.logger(s.log).Errorf("essential service gave up: shutting down")
	case svc.state == Idle && svc.blocked != "":
		svc.logger(s.log).Errorf("essential service cannot start: shutting down")
		code = 1
	default:
		return
	}
	s.essentialGaveUp = svc.name + " " + svc.gaveUpReason()
	s.lifeEvent(EssentialEnded, Facts{Code: code})
}

func (s *Supervisor) startMain() {
	if s.readyTimer != nil {
		s.readyTimer.Stop()
	}
	pid, err := s.opt.StartMain(func(e reaper.Exit) { s.inbox.post(func() { s.onMainExit(e) }) })
	if err != nil {
		s.log.Error(err)
		s.shutdownWhy = "main program could not start"
		s.lifeEvent(MainStartFailed, Facts{Code: reaper.ExitCode(err)})
		return
	}
	s.main = &mainProgram{pid: pid}
	s.log.Infof("main program started as process %d", pid)
	s.lifeEvent(MainStarted, Facts{})
}

func (s *Supervisor) onMainExit(e reaper.Exit) {
	s.log.Infof("main program ended: %s", e)
	s.main = nil
	code := s.opt.ExitRemap.Apply(e.Code())
	s.shutdownWhy = "main program ended"
	s.lifeEvent(MainExited, Facts{Code: code})
}

// orderShutdown asks for the shutdown, for reason; sig is what the main program
// gets first (the signal that came in).
func (s *Supervisor) orderShutdown(reason EndReason, sig unix.Signal, why string) {
	if s.life.Phase == PhaseRunning {
		s.shutdownSignal, s.shutdownWhy = sig, why
	}
	s.lifeEvent(ShutdownOrder, Facts{Reason: reason})
}

// beginShutdown: no service starts again, the main program gets its
// signal (lifeEvent), and shutdown_timeout starts; advanceShutdown does
// the rest, level by level.
func (s *Supervisor) beginShutdown() {
	s.shutdownAt = s.now()
	if s.shutdownWhy == "" {
		s.shutdownWhy = string(s.life.Reason)
	}
	s.log.Infof("shutting down (%s)", s.shutdownWhy)
	s.emit(Happening{Kind: KindShutdown, Reason: "began: " + s.shutdownWhy})
	s.deadline = time.AfterFunc(s.cfg.ShutdownTimeout, func() {
		s.inbox.post(func() { s.lifeEvent(DeadlinePassed, Facts{Limit: s.cfg.ShutdownTimeout}) })
	})
	for _, svc := range s.order {
		s.event(svc, Shutdown, "")
	}
}

// stopLeftovers ends every process still under tend once the services are
// stopped, with what is left of shutdown_timeout as their grace.
func (s *Supervisor) stopLeftovers() {
	if s.opt.Leftovers == nil {
		s.lifeEvent(LeftoversGone, Facts{})
		return
	}
	s.opt.Leftovers(s.Remaining(), func() {
		s.inbox.post(func() { s.lifeEvent(LeftoversGone, Facts{}) })
	})
}

func (s *Supervisor) killAll() {
	if s.main != nil {
		_ = s.opt.Launcher.Signal(s.main.pid, unix.SIGKILL, true)
	}
	for _, svc := range s.order {
		if svc.run != nil {
			svc.run.Kill()
		}
	}
}
