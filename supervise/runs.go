package supervise

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
	"github.com/tend-init/tend/tree"
)

// event asks the lifecycle table what svc does about e and carries it out.
// A refusal changes nothing and is returned for the operator.
// why, if given, is what the log line says instead of the event's name.
func (s *Supervisor) event(svc *service, e Event, why string) Decision {
	return s.eventOf(svc, e, Run{}, why, 0)
}

func (s *Supervisor) eventOf(svc *service, e Event, run Run, why string, left int) Decision {
	sit := svc.situation()
	sit.Run, sit.Left = run, left
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
	if d.Kill {
		s.endStopCommand(svc)
	}
	if d.Kill && svc.run != nil {
		svc.logger(s.log).Warnf("still running %s after %s: sending SIGKILL to its process group and every other process of it", signals.Name(svc.runSpec.StopSignal), svc.runSpec.StopTimeout)
		svc.run.Kill()
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
	case d.Next != svc.state || waits(d.Next) && svc.timer == nil:
		// The second: a launch from restarting that failed stays there,
		// with a new delay.
		svc.cancelTimer()
		delayed := waits(d.Next)
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
		return
	}
	s.noticeEssential(svc)
}

// waits: in this state only a timer ends the wait.
func waits(s State) bool { return s == Restarting || s == CrashLoopBackoff }

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
	svc.timer = time.AfterFunc(d, func() {
		s.inbox.post(func() {
			if s.current(svc) && gen == svc.gen {
				s.event(svc, ev, "")
			}
		})
	})
}

// launch runs a service's process now. It changes the state only once the
// process runs: a launch that fails is an event of the state the service
// is in (StartFailed, ForkFailed), decided by the table like any other.
func (s *Supervisor) launch(svc *service, why string) {
	svc.cancelTimer()
	svc.blocked = ""
	// The env files are read again at every start, so that a changed one
	// applies from the next start without a reload.
	env, err := svc.spec.StartEnv()
	if err != nil {
		if reaper.OutOfResources(err) {
			svc.logger(s.log).Errorf("could not run: cannot read its env_file: %v; trying again after the backoff", err)
			s.event(svc, ForkFailed, "")
			return
		}
		s.startFailed(svc, 1, fmt.Sprintf("cannot start: env_file: %v", err))
		return
	}
	files, err := s.outputFiles(svc)
	if err != nil {
		if reaper.OutOfResources(err) {
			// Out of descriptors for its pipes: not the service's fault.
			svc.logger(s.log).Errorf("could not run: cannot set up its output: %v; trying again after the backoff", err)
			s.event(svc, ForkFailed, "")
			return
		}
		s.startFailed(svc, 1, fmt.Sprintf("cannot start: cannot set up its output: %v", err))
		return
	}
	svc.runEnv = env
	cmd := reaper.Cmd{
		Args:  svc.spec.Command,
		Env:   env,
		Dir:   svc.spec.WorkingDir,
		Files: files.fds(),
		Sys:   &syscall.SysProcAttr{Credential: credential(svc.spec)},
	}
	if svc.spec.HasChildSettings() {
		if cmd, err = shimmed(cmd, svc.spec); err != nil {
			files.closeChildEnds()
			files.closeParentEnds()
			s.startFailed(svc, reaper.ExitCode(err), fmt.Sprintf("cannot start: %v", err))
			return
		}
	}
	if r := svc.spec.Ready; r != nil && r.Kind == config.CheckNotify {
		if err := s.ensureNotify(svc); err != nil {
			svc.logger(s.log).Errorf("cannot open the notify socket: %v", err)
		} else {
			cmd.Env = withVar(cmd.Env, "NOTIFY_SOCKET", svc.notify.addr)
		}
	}
	// Exits and the end of the run reach the supervisor through its inbox;
	// the run they belong to tells a stale one from the current. The
	// closures read run on the supervisor's goroutine, after this function
	// has set it, even when the callback came before StartService returned.
	var run ServiceRun
	watch := tree.Watch{
		Exited: func(e reaper.Exit, left int) {
			s.inbox.post(func() {
				if s.current(svc) && svc.run == run && svc.pid != 0 {
					s.onExit(svc, e, left)
				}
			})
		},
		Emptied: func() {
			s.inbox.post(func() {
				if s.current(svc) && svc.run == run {
					s.onEmptied(svc)
				}
			})
		},
	}
	watch.Limits = cgroupLimits(svc.spec)
	run, err = s.opt.Launcher.StartService(svc.name, cmd, watch)
	files.closeChildEnds()
	if err != nil {
		files.closeParentEnds()
		if reaper.OutOfResources(err) {
			svc.logger(s.log).Errorf("%v; trying again after the backoff", err)
			s.event(svc, ForkFailed, "")
			return
		}
		s.startFailed(svc, reaper.ExitCode(err), fmt.Sprintf("cannot start: %v", err))
		return
	}
	svc.startErr = ""
	svc.runSpec = svc.spec
	svc.started = s.now()
	svc.run, svc.pid = run, run.Pid()
	svc.tracking, svc.cgroup = run.Tracking()
	s.noteLimits(svc, run)
	svc.output = files.pump(s.opt.Sink, svc.name)
	svc.starts++
	if svc.notify != nil {
		svc.notify.read() // news of an earlier run is stale
		svc.notify.setMain(svc.pid)
	}
	s.setState(svc, Running, fmt.Sprintf("%s, process %d", why, svc.pid))
	s.startChecks(svc)
}

// withVar is a copy of env with name set to value: an entry of that name
// already there (from tend's own environment, say, when systemd started
// tend, or from an env file) is dropped, since a program's getenv finds the
// first of two.
func withVar(env []string, name, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

// startFailed judges a launch whose program cannot run as a run that ended
// at once with the shell's status for it (127 not found, 126 not
// executable; 1 when tend could not prepare it: its output, its env
// files); no process existed. why is logged, and is the service's reason
// until a start succeeds.
func (s *Supervisor) startFailed(svc *service, code int, why string) {
	svc.logger(s.log).Error(why)
	svc.startErr = why
	now := s.now()
	e := reaper.Exit{Status: unix.WaitStatus(code << 8), At: now}
	svc.started, svc.lastExit = now, &e
	s.eventOf(svc, StartFailed, Run{Started: now, Exit: e}, "", 0)
}

// askStop sends the stop signal of the definition the process was started
// with (a reload may have changed the service's), SIGKILL after its
// stop_timeout.
func (s *Supervisor) askStop(svc *service, why string) {
	svc.cancelChecks()
	s.arm(svc, svc.runSpec.StopTimeout, StopTimedOut)
	if argv := svc.runSpec.StopCommand; len(argv) > 0 {
		s.setState(svc, Stopping, fmt.Sprintf("%s: running stop_command %s", why, argv[0]))
		s.runStopCommand(svc, argv)
		return
	}
	sig := svc.runSpec.StopSignal
	svc.run.Signal(sig)
	s.setState(svc, Stopping, fmt.Sprintf("%s: sent %s", why, signals.Name(sig)))
}

// runStopCommand starts a service's stop_command (pg_ctl stop -m fast,
// nginx -s quit) in a process group of its own, with the service's user,
// directory and environment, and its output on tend's own. It is not a
// process of the service: the service's run ends when the service's own
// processes do, and stop_timeout's SIGKILL, armed before, still ends
// them. The command is killed then too, or when the run is over, whichever
// comes first; a command that fails is logged, and the timeout decides.
func (s *Supervisor) runStopCommand(svc *service, argv []string) {
	log := svc.logger(s.log)
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		log.Warnf("stop_command %s could not start: %v; sending %s instead", argv[0], err, signals.Name(svc.runSpec.StopSignal))
		svc.run.Signal(svc.runSpec.StopSignal)
		return
	}
	defer stdin.Close()
	cmd := reaper.Cmd{
		Args:  argv,
		Env:   svc.runEnv,
		Dir:   svc.runSpec.WorkingDir,
		Files: []uintptr{stdin.Fd(), 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Credential: credential(svc.runSpec)},
	}
	timeout := svc.runSpec.StopTimeout
	pid, err := s.opt.Launcher.Start(cmd, func(e reaper.Exit) {
		s.inbox.post(func() {
			if svc.stopPid != e.Pid {
				return // tend killed it: the run was over, or stop_timeout ran out
			}
			svc.stopPid = 0
			if e.Code() != 0 {
				log.Warnf("stop_command %s: %s; stop_timeout %s decides", argv[0], e, timeout)
			}
		})
	})
	if err != nil {
		log.Warnf("stop_command %s could not start: %v; sending %s instead", argv[0], err, signals.Name(svc.runSpec.StopSignal))
		svc.run.Signal(svc.runSpec.StopSignal)
		return
	}
	svc.stopPid = pid
}

// endStopCommand kills what is left of a stop_command, group and all.
func (s *Supervisor) endStopCommand(svc *service) {
	if svc.stopPid != 0 {
		_ = s.opt.Launcher.Signal(svc.stopPid, unix.SIGKILL, true)
		svc.stopPid = 0
	}
}

// onExit: the run's main process ended; left other processes of the run
// are still alive. The timer of a stop keeps running until the whole run
// is over: its SIGKILL is for whatever is left, not for the main process.
func (s *Supervisor) onExit(svc *service, e reaper.Exit, left int) {
	if svc.ready && !svc.spec.Oneshot {
		svc.ready = false
		s.emit(Happening{Kind: KindReady, Service: svc.name, Ready: boolPtr(false), Reason: e.String()})
	}
	svc.pid = 0
	svc.lastExit = &e
	svc.cancelChecks()
	if svc.notify != nil {
		svc.notify.setMain(0)
	}
	run := Run{Started: svc.started, Exit: e}
	if left > 0 {
		if svc.state == Stopping {
			svc.logger(s.log).Infof("main process ended (%s); %d other %s of it still running", e, left, plural(left, "process", "processes"))
		}
		s.eventOf(svc, MainGone, run, "", left)
		return
	}
	s.runOver(svc)
	if svc.state == Stopping && svc.goal != GoalRun {
		s.log.WithField("service", svc.name).Debugf("%s after %s", e, round(e.At.Sub(svc.started)))
	}
	// How it ended is the log's word for a run that was asked to end
	// (stopping → stopped: killed by SIGTERM); a judged run has its own.
	s.eventOf(svc, Exited, run, e.String(), 0)
}

// onEmptied: the last process of a run whose main process had ended is
// gone.
func (s *Supervisor) onEmptied(svc *service) {
	s.runOver(svc)
	svc.logger(s.log).Debugf("the last process of its run is gone")
	e := *svc.lastExit
	s.eventOf(svc, Emptied, Run{Started: svc.started, Exit: e}, fmt.Sprintf("main process %s, and the last of its other processes is gone", e), 0)
}

// runOver forgets the run: nothing of it is alive, so its output pumps may
// drop what a stalled output cannot take, and its timer (a stop timeout) is
// done.
func (s *Supervisor) runOver(svc *service) {
	svc.cancelTimer()
	s.endStopCommand(svc) // the service is gone: nothing left for it to stop
	svc.run = nil
	svc.output.End()
	svc.output = nil
}

func (s *Supervisor) setState(svc *service, to State, why string) {
	from := svc.state
	svc.state, svc.since = to, s.now()
	s.deps.changed(svc, from)
	// from and to are fields too, for log_format = "json" and "logfmt".
	svc.logger(s.log).WithFields(logrus.Fields{"from": string(from), "to": string(to)}).Infof("%s → %s: %s", from, to, why)
	s.emit(Happening{Kind: KindState, Service: svc.name, From: from, To: to, PID: svc.pid, Reason: why})
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
	s.opt.Launcher.ForgetService(svc.name)
	svc.logger(s.log).Info("removed from the config: forgotten")
}

func credential(svc *config.Service) *syscall.Credential {
	if c := svc.Credential; c != nil {
		return &syscall.Credential{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups}
	}
	return nil
}
