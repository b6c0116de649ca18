package supervise

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
)

// event asks the lifecycle table what svc does about e and carries it out.
// A refusal changes nothing and is returned for the operator.
// why, if given, is what the log line says instead of the event's name.
func (s *Supervisor) event(svc *service, e Event, why string) Decision {
	return s.eventOf(svc, e, Run{}, why)
}

func (s *Supervisor) eventOf(svc *service, e Event, run Run, why string) Decision {
	sit := svc.situation()
	sit.Run = run
	d := decide(sit, e)
	if d.Refused == "" {
		if d.Reason == "" {
			d.Reason = why
		}
		s.carryOut(svc, e, d)
	}
	return d
}

// carryOut is the edge where decisions become effects: signals, timers,
// forks and log lines. It is the only writer of state, goal and ending.
func (s *Supervisor) carryOut(svc *service, e Event, d Decision) {
	goal := svc.goal
	svc.goal, svc.ending, svc.counters = d.Goal, d.Ending, d.Counters
	if d.Judged {
		svc.lastClean = d.Clean
		if svc.spec.Oneshot && d.Clean && e == Exited {
			svc.succeeded = true
		}
	} else if d.Clean {
		svc.lastClean = true
	}
	why := d.Reason
	if why == "" {
		why = e.String()
	}
	if d.Kill && svc.pid != 0 {
		svc.logger(s.log).Warnf("still running %s after %s: sending SIGKILL to its process group", signals.Name(svc.runSpec.StopSignal), svc.runSpec.StopTimeout)
		_ = s.opt.Launcher.Signal(svc.pid, unix.SIGKILL, true)
	}
	if d.Blocked {
		return // the caller recorded why
	}
	if d.Next == svc.state && !d.Launch && !d.AskStop && goal != d.Goal {
		// No new state, but a new intent, such as an operator's stop while
		// a failed check is stopping it: say so, it decides what comes next.
		svc.logger(s.log).Infof("%s while %s: %s", why, svc.state, goalWords[d.Goal])
	}
	switch {
	case d.Launch:
		s.launch(svc, why)
	case d.AskStop:
		s.askStop(svc, why)
	case d.Next != svc.state:
		svc.cancelTimer()
		delayed := d.Next == Restarting || d.Next == CrashLoopBackoff
		if delayed {
			why = fmt.Sprintf("%s; next start in %s", why, d.Wait)
		}
		s.setState(svc, d.Next, why)
		if delayed {
			// Always a timer, a zero delay too: nothing else ends the wait.
			s.arm(svc, d.Wait, DelayOver)
		}
	}
	if d.Forget {
		s.forget(svc)
	}
	if d.Judged && svc.spec.Essential && svc.goal == GoalRun && (d.Next == MaxRestartsReached || (d.Next == Stopped && !d.Clean)) {
		svc.logger(s.log).Errorf("essential service gave up: shutting down")
		code := 1
		if svc.lastExit != nil {
			code = svc.lastExit.Code()
		}
		s.setExit(code)
		s.beginShutdown(unix.SIGTERM, EndEssential, "essential service "+svc.name+" gave up")
	}
}

var goalWords = map[Goal]string{
	GoalRun:     "it follows its restart policy",
	GoalHeld:    "it stays stopped until an operator starts it",
	GoalRestart: "it starts again once its process is gone",
	GoalRemoved: "it is forgotten once its process is gone",
	GoalDown:    "tend is shutting down",
}

// arm starts svc's one timer; an older one is cancelled first.
func (s *Supervisor) arm(svc *service, d time.Duration, ev Event) {
	svc.cancelTimer()
	gen := svc.gen
	svc.timer = time.AfterFunc(d, func() { s.inbox.post(timerFired{svc: svc, gen: gen, ev: ev}) })
}

// launch runs a service's process now. A run that cannot start ends at
// once and is judged like any other; one that could not even be forked is
// tried again after the backoff delay, and is not the service's fault.
func (s *Supervisor) launch(svc *service, why string) {
	svc.cancelTimer()
	svc.blocked = ""
	svc.runSpec = svc.spec
	svc.started = s.now()
	files, err := s.outputFiles(svc)
	if err != nil && couldNotRun(err) {
		// Out of descriptors for its pipes: not the service's fault.
		svc.logger(s.log).Errorf("could not run: cannot set up its output: %v; trying again after the backoff", err)
		s.setState(svc, Running, why+": the process did not start")
		s.event(svc, ForkFailed, "")
		return
	}
	if err != nil {
		svc.logger(s.log).Errorf("cannot set up output: %v", err)
		s.setState(svc, Running, why+": no output")
		s.onExit(svc, reaper.Exit{Status: unix.WaitStatus(1 << 8), At: s.now()})
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
	pid, exits, err := s.opt.Launcher.Start(cmd)
	files.closeChildEnds()
	if err != nil {
		files.closeParentEnds()
		s.setState(svc, Running, why+": the process did not start")
		if couldNotRun(err) {
			svc.logger(s.log).Errorf("%v; trying again after the backoff", err)
			s.event(svc, ForkFailed, "")
			return
		}
		svc.logger(s.log).Errorf("cannot start: %v", err)
		s.onExit(svc, reaper.Exit{Status: unix.WaitStatus(reaper.ExitCode(err) << 8), At: s.now()})
		return
	}
	files.pump(s.opt.Sink, svc.name)
	svc.pid = pid
	svc.starts++
	if svc.notify != nil {
		svc.notify.read() // news of an earlier run is stale
		svc.notify.setMain(pid)
	}
	s.setState(svc, Running, fmt.Sprintf("%s, process %d", why, pid))
	guard.Go("exit watch of "+svc.name, func() { s.inbox.post(exited{svc: svc, pid: pid, exit: <-exits}) })
	s.startChecks(svc)
}

// couldNotRun tells a fork that failed for lack of resources (a pids
// limit, file descriptors, memory) from a program that cannot be run: the
// first may work a moment later and says nothing about the service.
func couldNotRun(err error) bool {
	for _, errno := range []error{unix.EAGAIN, unix.ENOMEM, unix.EMFILE, unix.ENFILE} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// askStop sends the stop signal of the definition the process was started
// with (a reload may have changed the service's), SIGKILL after its
// stop_timeout.
func (s *Supervisor) askStop(svc *service, why string) {
	svc.cancelChecks()
	sig := svc.runSpec.StopSignal
	if err := s.opt.Launcher.Signal(svc.pid, sig, true); err != nil {
		svc.logger(s.log).Debugf("sending %s: %v", signals.Name(sig), err)
	}
	s.setState(svc, Stopping, fmt.Sprintf("%s: sent %s", why, signals.Name(sig)))
	s.arm(svc, svc.runSpec.StopTimeout, StopTimedOut)
}

func (s *Supervisor) onExit(svc *service, e reaper.Exit) {
	if svc.ready && !svc.spec.Oneshot {
		svc.ready = false
		s.emit(Happening{Kind: EventReady, Service: svc.name, Ready: boolPtr(false), Reason: e.String()})
	}
	svc.pid = 0
	svc.lastExit = &e
	svc.cancelTimer()
	svc.cancelChecks()
	if svc.notify != nil {
		svc.notify.setMain(0)
	}
	if svc.state == Stopping && svc.goal != GoalRun {
		s.log.WithField("service", svc.name).Debugf("%s after %s", e, round(e.At.Sub(svc.started)))
	}
	s.eventOf(svc, Exited, Run{Started: svc.started, Exit: e}, "")
}

func (s *Supervisor) setState(svc *service, to State, why string) {
	from := svc.state
	svc.state, svc.since = to, s.now()
	s.deps.changed(svc, from)
	// from and to are fields too, for log_format = "json" and "logfmt".
	svc.logger(s.log).WithFields(logrus.Fields{"from": string(from), "to": string(to)}).Infof("%s → %s: %s", from, to, why)
	s.emit(Happening{Kind: EventState, Service: svc.name, From: from, To: to, PID: svc.pid, Reason: why})
}

// forget drops a removed service whose process is gone.
func (s *Supervisor) forget(svc *service) {
	svc.cancelTimer()
	svc.cancelChecks()
	if svc.notify != nil {
		svc.notify.close()
		svc.notify = nil
	}
	delete(s.services, svc.name)
	for i, o := range s.order {
		if o == svc {
			s.order = append(s.order[:i:i], s.order[i+1:]...)
			break
		}
	}
	s.deps.forget(svc)
	if s.opt.Sink != nil {
		s.opt.Sink.Logs().Forget(svc.name)
	}
	svc.logger(s.log).Info("removed from the config: forgotten")
}

func credential(svc *config.Service) *syscall.Credential {
	if c := svc.Credential; c != nil {
		return &syscall.Credential{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups}
	}
	return nil
}
