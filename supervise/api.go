package supervise

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/signals"
)

// What the control socket asks of the supervisor. Every call runs on the
// supervisor's goroutine (call), so nothing here shares its state.

// ServiceStatus is what the control API shows of a service.
type ServiceStatus struct {
	Name     string    `json:"name"`
	State    State     `json:"state"`
	Ready    bool      `json:"ready"`
	Healthy  bool      `json:"healthy"`
	Oneshot  bool      `json:"oneshot,omitempty"`
	PID      int       `json:"pid,omitempty"`
	Restarts int       `json:"restarts"`
	Uptime   float64   `json:"uptime_seconds,omitempty"` // of the current run
	Since    time.Time `json:"since"`                    // when it entered its state
	LastExit *ExitInfo `json:"last_exit,omitempty"`
	Reason   string    `json:"reason,omitempty"` // why it is not started, why its last start failed, or its sd_notify STATUS
	// Tracking is how its processes are found: "cgroup" (Cgroup names
	// it) or "session"; empty before its first run.
	Tracking string `json:"tracking,omitempty"`
	Cgroup   string `json:"cgroup,omitempty"`
	// Limits says of each cgroup limit (memory_max, cpu_max, pids_max)
	// whether it applies to the last run: "applied" or "not applied: WHY".
	Limits map[string]string `json:"limits,omitempty"`
}

// ExitInfo is how a service's last run ended.
type ExitInfo struct {
	Code   int       `json:"code"`             // the exit code, or 128+N
	Signal string    `json:"signal,omitempty"` // when a signal ended it
	Time   time.Time `json:"time"`
}

// Command is something an operator asks of a service.
type Command string

const (
	CmdStart   Command = "start"
	CmdStop    Command = "stop"
	CmdRestart Command = "restart"
)

var commandEvents = map[Command]Event{CmdStart: OpStart, CmdStop: OpStop, CmdRestart: OpRestart}

// ErrUnknownService is returned for a name the config does not have.
var ErrUnknownService = errors.New("no such service")

// lookup finds a service of the config in force; removed ones still
// stopping are not the operator's to address.
func (s *Supervisor) lookup(name string) (*service, error) {
	svc, ok := s.services[name]
	if !ok || svc.goal == GoalRemoved {
		return nil, fmt.Errorf("%w: %q", ErrUnknownService, name)
	}
	return svc, nil
}

// Statuses returns every service's status, in dependency order.
func (s *Supervisor) Statuses() ([]ServiceStatus, error) {
	return call(s, func() []ServiceStatus {
		out := make([]ServiceStatus, 0, len(s.order))
		for _, svc := range s.order {
			if svc.goal != GoalRemoved {
				out = append(out, s.status(svc))
			}
		}
		return out
	})
}

type statusResult struct {
	st  ServiceStatus
	err error
}

// Status returns one service's status.
func (s *Supervisor) Status(name string) (ServiceStatus, error) {
	r, err := call(s, func() statusResult {
		svc, err := s.lookup(name)
		if err != nil {
			return statusResult{err: err}
		}
		return statusResult{st: s.status(svc)}
	})
	if err != nil {
		return ServiceStatus{}, err
	}
	return r.st, r.err
}

func (s *Supervisor) status(svc *service) ServiceStatus {
	st := ServiceStatus{
		Name:     svc.name,
		State:    svc.state,
		Ready:    svc.isReady(),
		Healthy:  svc.state == Running && svc.healthy,
		Oneshot:  svc.spec.Oneshot,
		PID:      svc.pid,
		Restarts: svc.counters.Restarts,
		Since:    svc.since,
		Reason:   svc.blocked,
		Tracking: string(svc.tracking),
		Cgroup:   svc.cgroup,
		Limits:   svc.limits,
	}
	if st.Reason == "" && svc.waitsForOperator() {
		st.Reason = "autostart = false: waiting for tend ctl start"
	}
	if st.Reason == "" {
		st.Reason = svc.startErr
	}
	if st.Reason == "" {
		st.Reason = svc.notifyStatus
	}
	if svc.pid != 0 {
		st.Uptime = s.now().Sub(svc.started).Seconds()
	}
	if e := svc.lastExit; e != nil {
		st.LastExit = &ExitInfo{Code: e.Code(), Time: e.At}
		if e.Signaled() {
			st.LastExit.Signal = signals.Name(e.Status.Signal())
		}
	}
	return st
}

// Operate applies an operator command to a service. A command its state
// does not allow is refused with ErrConflict and the reason; either way the
// request is answered.
func (s *Supervisor) Operate(name string, cmd Command) error {
	ev, ok := commandEvents[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q", cmd)
	}
	r, err := call(s, func() error {
		svc, err := s.lookup(name)
		if err != nil {
			return err
		}
		if d := s.event(svc, ev, "operator "+string(cmd)); d.Refused != "" {
			return fmt.Errorf("%w: %s %s", ErrConflict, name, d.Refused) // "refused: db is running, so it cannot start"
		}
		return nil
	})
	if err != nil {
		return err
	}
	return r
}

type healthResult struct {
	ok      bool
	reasons []string
}

// Health reports whether every service is in a good state: running, ready
// and healthy, or a oneshot that succeeded. The reasons name the others.
// A service that waits for an operator (autostart = false) is not
// counted: it is meant not to run.
func (s *Supervisor) Health() (bool, []string, error) {
	r, err := call(s, func() healthResult {
		var reasons []string
		for _, svc := range s.order {
			if svc.goal == GoalRemoved || svc.waitsForOperator() {
				continue
			}
			if why := svc.notGood(); why != "" {
				reasons = append(reasons, why)
			}
		}
		return healthResult{ok: len(reasons) == 0, reasons: reasons}
	})
	return r.ok, r.reasons, err
}

// SignalService sends sig to a running service's process.
func (s *Supervisor) SignalService(name string, sig unix.Signal) error {
	r, err := call(s, func() error {
		svc, err := s.lookup(name)
		switch {
		case err != nil:
			return err
		case svc.pid == 0:
			return fmt.Errorf("%w: %s is %s, no process to signal", ErrConflict, name, svc.state)
		}
		svc.logger(s.log).Infof("operator sent %s", signals.Name(sig))
		return s.opt.Launcher.Signal(svc.pid, sig, false)
	})
	if err != nil {
		return err
	}
	return r
}

// Shutdown starts the graceful shutdown, as SIGTERM does. It returns once
// the shutdown has begun; the caller answers its client before tend exits.
func (s *Supervisor) Shutdown(why string) error {
	_, err := call(s, func() struct{} {
		s.orderShutdown(EndRequested, unix.SIGTERM, why)
		return struct{}{}
	})
	return err
}

// Reload reads the config again and applies it (SPEC section 8), and says
// what it did. An invalid config changes nothing; its errors are returned,
// one per line. The file is read on the caller's goroutine, not the
// supervisor's.
func (s *Supervisor) Reload() (ReloadSummary, error) {
	if s.opt.LoadConfig == nil {
		return ReloadSummary{}, errors.New("reload is not possible: tend was not started with a config file")
	}
	cfg, err := s.opt.LoadConfig()
	if err != nil {
		_, _ = call(s, func() struct{} { s.reloadRefused(err); return struct{}{} })
		return ReloadSummary{}, err
	}
	type result struct {
		sum ReloadSummary
		err error
	}
	r, err := call(s, func() result { sum, err := s.apply(cfg); return result{sum, err} })
	if err != nil {
		return ReloadSummary{}, err
	}
	return r.sum, r.err
}

// Logs returns the last n lines of a service's output (n <= 0: all that is
// kept), or of every service when name is "".
func (s *Supervisor) Logs(name string, n int) ([]LogLine, error) {
	if err := s.known(name); err != nil {
		return nil, err
	}
	return s.opt.Sink.Logs().Recent(name, n), nil
}

// FollowLogs streams a service's new output lines ("" for every service)
// until the follower's Stop or until it falls behind; see Logs.Follow.
func (s *Supervisor) FollowLogs(name string) (*Follower, error) {
	if err := s.known(name); err != nil {
		return nil, err
	}
	return s.opt.Sink.Logs().Follow(name), nil
}

// SubscribeEvents streams the happenings from now on; see Events.
func (s *Supervisor) SubscribeEvents() (<-chan Happening, func()) { return s.events.Subscribe() }

// known checks a service name ("" is every service) on the supervisor's
// goroutine.
func (s *Supervisor) known(name string) error {
	if name == "" {
		return nil
	}
	r, err := call(s, func() error { _, err := s.lookup(name); return err })
	if err != nil {
		return err
	}
	return r
}

// ReopenedFile is an output file that Reopen opened again.
type ReopenedFile struct {
	Service string `json:"service"`
	File    string `json:"file"`
	// Open: a run held it open and now writes to the file at the path.
	// False: no run of the service holds it; its next start opens it.
	Open bool `json:"open"`
}

// Reopen opens again the output files that tend writes (output =
// PATH with output_max_size) of a service, or of every service when name is
// "", so that new lines go to a file at the path after an external
// logrotate moved the old one. A named service whose output is not such a
// file is refused with ErrConflict and what to change. The files are
// opened on the caller's goroutine, not the supervisor's.
func (s *Supervisor) Reopen(name string) ([]ReopenedFile, error) {
	type found struct {
		files []ReopenedFile
		err   error
	}
	r, err := call(s, func() found {
		var svcs []*service
		if name != "" {
			svc, err := s.lookup(name)
			if err != nil {
				return found{err: err}
			}
			spec := svc.spec
			if svc.run != nil && svc.runSpec != nil {
				spec = svc.runSpec
			}
			switch {
			case spec.Output == "prefix" || spec.Output == "inherit" || spec.Output == "":
				return found{err: fmt.Errorf("%w: %s has no output file to reopen (output = %q)", ErrConflict, name, spec.Output)}
			case spec.OutputMaxSize == 0:
				return found{err: fmt.Errorf("%w: %s writes its output file %s itself, so only a restart of it opens the file again; set output_max_size to have tend write (and rotate) it, which tend ctl reopen can reopen", ErrConflict, name, spec.Output)}
			}
			svcs = []*service{svc}
		} else {
			for _, svc := range s.order {
				if svc.goal != GoalRemoved {
					svcs = append(svcs, svc)
				}
			}
		}
		var out found
		for _, svc := range svcs {
			spec := svc.spec
			if svc.run != nil && svc.runSpec != nil {
				spec = svc.runSpec
			}
			if spec.OutputMaxSize > 0 {
				out.files = append(out.files, ReopenedFile{Service: svc.name, File: filepath.Clean(spec.Output)})
			}
		}
		return out
	})
	if err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
	}
	var errs []error
	for i := range r.files {
		f := &r.files[i]
		open, err := s.opt.Sink.reopenFile(f.File)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: cannot open its output file again: %v", f.Service, err))
		}
		f.Open = open
		if open && err == nil {
			s.log.WithField("service", f.Service).Infof("reopened its output file %s, as an operator asked", f.File)
		}
	}
	if r.files == nil {
		r.files = []ReopenedFile{}
	}
	return r.files, errors.Join(errs...)
}
