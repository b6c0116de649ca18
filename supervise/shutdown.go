package supervise

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/reaper"
)

// progress does whatever has become possible after a batch of events:
// start services whose dependencies are ready, start the main program,
// advance a shutdown, or notice that nothing is left to do.
func (s *Supervisor) progress() {
	if !s.shutdown {
		s.startWhatCan()
	}
	if s.shutdown {
		s.advanceShutdown()
		return
	}
	if s.deps.readyMaybe {
		s.deps.readyMaybe = false
		if s.opt.StartMain != nil && s.main == nil && !s.mainDone && !s.mainFailed && s.allReady() {
			s.startMain()
		}
	}
	if s.deps.finalMaybe {
		s.deps.finalMaybe = false
		if s.settled() {
			s.setExit(s.cleanStatus())
			s.end(EndSettled)
		}
	}
}

// settled: no main program to wait for, and every service ended by itself
// with nothing to start it again (SPEC section 6). Services an operator
// stopped or a reload removed keep tend running, and so does a config left
// with no service at all.
func (s *Supervisor) settled() bool {
	if s.opt.StartMain != nil && !s.mainDone && !s.mainFailed {
		return false
	}
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

// setExit records the exit status; the first decision wins, except that
// the main program's status always does (onMainExit).
func (s *Supervisor) setExit(code int) {
	if !s.exitSet {
		s.exitCode, s.exitSet = code, true
	}
}

func (s *Supervisor) end(why EndReason) {
	if s.endReason == "" {
		s.endReason = why
	}
	s.finished = true
}

func (s *Supervisor) startMain() {
	if s.readyTimer != nil {
		s.readyTimer.Stop()
	}
	pid, exits, err := s.opt.StartMain()
	if err != nil {
		s.log.Error(err)
		s.mainFailed = true
		s.exitCode, s.exitSet = reaper.ExitCode(err), true
		s.beginShutdown(unix.SIGTERM, EndMain, "main program could not start")
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
	s.exitCode, s.exitSet = code, true
	s.beginShutdown(unix.SIGTERM, EndMain, "main program ended")
}

// beginShutdown stops everything: the main program first, then services in
// reverse dependency order (advanceShutdown), within shutdown_timeout.
func (s *Supervisor) beginShutdown(sig unix.Signal, reason EndReason, why string) {
	if s.shutdown {
		return
	}
	s.shutdown, s.shutdownAt, s.endReason, s.stoppingLevel = true, s.now(), reason, -1
	s.log.Infof("shutting down (%s)", why)
	s.emit(Happening{Kind: EventShutdown, Reason: "began: " + why})
	s.deadline = time.AfterFunc(s.cfg.ShutdownTimeout, func() { s.inbox.post(shutdownExpiry{}) })
	for _, svc := range s.order {
		s.event(svc, Shutdown, "")
	}
	if s.main != nil {
		_ = s.opt.Launcher.Signal(s.main.pid, sig, s.opt.KillGroup)
	}
}

// advanceShutdown stops the deepest dependency level that still runs, all
// of its services at once, once the main program is gone; it ends Run when
// no process is left.
func (s *Supervisor) advanceShutdown() {
	if s.main != nil {
		return
	}
	level := s.deps.highestLive()
	if level < 0 {
		if !s.exitSet { // the main program's status, say, decided already
			s.setExit(s.cleanStatus())
		}
		s.emit(Happening{Kind: EventShutdown, Reason: fmt.Sprintf("every service stopped; exit status %d", s.exitCode)})
		s.end(s.endReason)
		return
	}
	if level != s.stoppingLevel {
		s.stoppingLevel = level
		s.emit(Happening{Kind: EventShutdown, Reason: fmt.Sprintf("stopping dependency level %d", level)})
	}
	for _, svc := range s.order {
		if svc.level == level && svc.state == Running {
			s.event(svc, ShutdownTurn, "")
		}
	}
}

func (s *Supervisor) killAll() {
	if s.main != nil {
		_ = s.opt.Launcher.Signal(s.main.pid, unix.SIGKILL, true)
	}
	for _, svc := range s.order {
		if svc.pid != 0 {
			_ = s.opt.Launcher.Signal(svc.pid, unix.SIGKILL, true)
		}
	}
}
