package supervise

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/signals"
)

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
	Reason   string    `json:"reason,omitempty"` // why it is not started, or its sd_notify STATUS
}

// ExitInfo is how a service's last run ended.
type ExitInfo struct {
	Code   int       `json:"code"`             // the exit code, or 128+N
	Signal string    `json:"signal,omitempty"` // when a signal ended it
	Time   time.Time `json:"time"`
}

// Statuses returns every service's status, in dependency order.
func (s *Supervisor) Statuses() ([]ServiceStatus, error) {
	var out []ServiceStatus
	if !s.Do(func() {
		for _, name := range s.cfg.Order {
			out = append(out, s.status(s.services[name]))
		}
	}) {
		return nil, errBusy
	}
	return out, nil
}

// Status returns one service's status.
func (s *Supervisor) Status(name string) (ServiceStatus, error) {
	var st ServiceStatus
	var err error
	if !s.Do(func() {
		svc, ok := s.services[name]
		if !ok {
			err = fmt.Errorf("%w: %q", ErrUnknownService, name)
			return
		}
		st = s.status(svc)
	}) {
		return st, errBusy
	}
	return st, err
}

var errBusy = errors.New("the supervisor did not answer in time")

func (s *Supervisor) status(svc *service) ServiceStatus {
	st := ServiceStatus{
		Name:     svc.spec.Name,
		State:    svc.state,
		Ready:    svc.isReady(),
		Healthy:  svc.state == Running && svc.healthy,
		Oneshot:  svc.spec.Oneshot,
		PID:      svc.pid,
		Restarts: svc.counters.Restarts,
		Since:    svc.since,
		Reason:   svc.blocked,
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

// Health reports whether every service is in a good state: running, ready
// and healthy, or a oneshot that succeeded. The reasons name the others.
func (s *Supervisor) Health() (bool, []string, error) {
	var reasons []string
	if !s.Do(func() {
		for _, name := range s.cfg.Order {
			svc := s.services[name]
			switch {
			case svc.spec.Oneshot && svc.succeeded:
			case svc.state == Running && svc.isReady() && svc.healthy:
			case svc.state == Running && !svc.isReady():
				reasons = append(reasons, name+" is not ready")
			case svc.state == Running:
				reasons = append(reasons, name+" is unhealthy")
			default:
				reasons = append(reasons, fmt.Sprintf("%s is %s", name, svc.describe()))
			}
		}
	}) {
		return false, nil, errBusy
	}
	return len(reasons) == 0, reasons, nil
}

// SignalService sends sig to a running service's process.
func (s *Supervisor) SignalService(name string, sig unix.Signal) error {
	var err error
	if !s.Do(func() {
		svc, ok := s.services[name]
		switch {
		case !ok:
			err = fmt.Errorf("%w: %q", ErrUnknownService, name)
		case svc.pid == 0:
			err = fmt.Errorf("%w: %s is %s, no process to signal", ErrConflict, name, svc.state)
		default:
			svc.logger(s.log).Infof("operator sent %s", signals.Name(sig))
			err = s.opt.Launcher.Signal(svc.pid, sig, false)
		}
	}) {
		return errBusy
	}
	return err
}

// ErrConflict is a command the service's state does not allow.
var ErrConflict = errors.New("not possible now")

// Shutdown starts the graceful shutdown, as SIGTERM does.
func (s *Supervisor) Shutdown(why string) error {
	if !s.Do(func() { s.beginShutdown(unix.SIGTERM, why) }) {
		return errBusy
	}
	return nil
}

// Reload reads the config again and applies it (SPEC section 8). An invalid
// config changes nothing; its errors are returned, one per line.
func (s *Supervisor) Reload() error {
	if s.opt.LoadConfig == nil {
		return errors.New("reload is not possible: tend was not started with a config file")
	}
	cfg, err := s.opt.LoadConfig()
	if err != nil {
		s.log.Errorf("reload: the config is invalid, nothing changed:\n%v", err)
		return err
	}
	if !s.Do(func() { err = s.apply(cfg) }) {
		return errBusy
	}
	return err
}

// apply moves the running services to cfg: new ones start, removed ones
// stop, changed ones restart (or only take their new restart settings),
// unchanged ones are left alone.
func (s *Supervisor) apply(cfg *config.Config) error {
	if s.shutdown {
		return fmt.Errorf("%w: tend is shutting down", ErrConflict)
	}
	if cfg.ControlSocket != s.cfg.ControlSocket {
		s.log.Warnf("reload: control_socket changed to %q; it takes effect when tend restarts", cfg.ControlSocket)
	}
	var added, removed, restarted, updated []string
	for _, name := range s.cfg.Order {
		if _, keep := cfg.Services[name]; !keep {
			removed = append(removed, name)
			s.retire(s.services[name])
		}
	}
	for _, name := range cfg.Order {
		spec := cfg.Services[name]
		svc, ok := s.services[name]
		switch {
		case !ok:
			s.services[name] = newService(spec)
			added = append(added, name)
		case !spec.Equal(svc.spec):
			if s.redefine(name, spec) {
				restarted = append(restarted, name)
			} else {
				updated = append(updated, name)
			}
		}
		// An operator's stop holds an unless-stopped service across
		// reloads; an "always" service is started again, as Docker does
		// when its daemon restarts.
		if svc != nil && svc.heldByOperator && spec.Restart == config.PolicyAlways && svc.state == Stopped {
			svc.heldByOperator = false
			svc.reset()
			s.start(svc, "reload: restart policy always")
			restarted = append(restarted, name)
		}
	}
	cfg.ControlSocket = s.cfg.ControlSocket
	s.cfg = cfg
	s.assignLevels()
	s.log.Infof("reload: added %v, removed %v, restarted %v, updated without restart %v", added, removed, restarted, updated)
	return nil
}

// retire stops a service that a reload removed; it is forgotten once it
// has stopped (see forgetRetired).
func (s *Supervisor) retire(svc *service) {
	svc.retired = true
	switch svc.state {
	case Running:
		svc.heldByOperator = true
		s.stop(svc, "removed from the config")
	case Restarting, CrashLoopBackoff:
		svc.cancelTimer()
		s.setState(svc, Stopped, "removed from the config")
	}
}

// forgetRetired drops removed services that have stopped.
func (s *Supervisor) forgetRetired() {
	for name, svc := range s.services {
		if svc.retired && svc.state != Running && svc.state != Stopping {
			if svc.notify != nil {
				svc.notify.close()
			}
			delete(s.services, name)
			s.cfg.Order = slices.DeleteFunc(s.cfg.Order, func(n string) bool { return n == name })
		}
	}
}
