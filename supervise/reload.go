package supervise

import (
	"errors"
	"fmt"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/guard"
)

// startReload reads the config file again for a SIGHUP, off the
// supervisor's goroutine (a big file takes time to parse). One load runs
// at a time; SIGHUPs during it ask for one more load after it.
func (s *Supervisor) startReload() {
	if s.opt.LoadConfig == nil {
		s.log.Warn("reload asked for, but tend was not started with a config file")
		return
	}
	if s.reloading {
		s.reloadAgain = true
		return
	}
	s.reloading = true
	load := s.opt.LoadConfig
	guard.Go("config reload", func() {
		cfg, err := load()
		s.inbox.post(func() { s.onReloadLoaded(cfg, err) })
	})
}

func (s *Supervisor) onReloadLoaded(cfg *config.Config, err error) {
	s.reloading = false
	if err != nil {
		s.reloadRefused(err)
	} else if _, err := s.apply(cfg); err != nil {
		s.log.Errorf("reload: %v", err)
	}
	if s.reloadAgain {
		s.reloadAgain = false
		s.startReload()
	}
}

// apply moves the running services to cfg (SPEC section 8): new ones
// start, removed ones stop and are forgotten, changed ones restart (or only
// take their new restart settings), unchanged ones are left alone. A
// service removed by an earlier reload whose process is still stopping is
// taken back: it starts with its new definition once the old process is
// gone, so it never has two.
func (s *Supervisor) apply(cfg *config.Config) (ReloadSummary, error) {
	if s.life.Phase != PhaseRunning {
		return ReloadSummary{}, fmt.Errorf("%w: tend is shutting down", ErrConflict)
	}
	if cfg.ControlSocket != s.cfg.ControlSocket {
		s.log.Warnf("reload: control_socket changed to %q; it takes effect when tend restarts", cfg.ControlSocket)
	}
	if cfg.HealthListen != s.cfg.HealthListen {
		s.log.Warnf("reload: health_listen changed to %q; it takes effect when tend restarts", cfg.HealthListen)
	}
	if cfg.MetricsListen != s.cfg.MetricsListen {
		s.log.Warnf("reload: metrics_listen changed to %q; it takes effect when tend restarts", cfg.MetricsListen)
	}
	var added, removed, readded, restarted, updated []string
	unchanged := 0
	for _, svc := range s.order {
		if _, keep := cfg.Services[svc.name]; !keep && svc.goal != GoalRemoved {
			removed = append(removed, svc.name)
			s.event(svc, Removed, "removed from the config")
		}
	}
	// The new order: the config's, then removed services still stopping.
	order := make([]*service, 0, len(cfg.Order))
	for _, name := range cfg.Order {
		spec := cfg.Services[name]
		svc, ok := s.services[name]
		switch {
		case !ok:
			svc = newService(spec)
			s.services[name] = svc
			added = append(added, name)
		case svc.goal == GoalRemoved:
			svc.spec = spec
			s.event(svc, ReAdded, "added to the config again")
			readded = append(readded, name)
		case !spec.Equal(svc.spec):
			old := svc.spec
			svc.spec = spec
			if spec.RestartSettingsOnlyChanged(old) {
				updated = append(updated, name)
			} else if d := s.event(svc, Redefined, "definition changed"); d.Launch || d.AskStop {
				restarted = append(restarted, name)
			}
		default:
			// Equal: the new one is kept, so that the next reload finds
			// the very *Service its Loader hands back, and needs no deeper
			// comparison.
			svc.spec = spec
			unchanged++
		}
		// Only a stopped service has anything to decide on a reload (its
		// cell in the table); the others are not asked, which keeps a
		// reload of one service from costing a decision for each.
		if ok && svc.goal != GoalRemoved && Lookup(svc.state, Reloaded).Do != Ignore {
			if d := s.event(svc, Reloaded, "reload: restart policy always"); d.Launch {
				restarted = append(restarted, name)
			}
		}
		order = append(order, svc)
	}
	for _, svc := range s.order {
		if _, kept := cfg.Services[svc.name]; !kept && s.current(svc) {
			order = append(order, svc)
		}
	}
	// The supervisor keeps its own copy of the socket path and listen
	// addresses: they are not reopened by a reload.
	next := *cfg
	next.ControlSocket = s.cfg.ControlSocket
	next.HealthListen, next.MetricsListen = s.cfg.HealthListen, s.cfg.MetricsListen
	s.cfg, s.order = &next, order
	s.deps.rebuild(s.order, s.services)
	summary := fmt.Sprintf("added %v, removed %v, re-added %v, restarted %v, updated without restart %v", added, removed, readded, restarted, updated)
	s.log.Infof("reload: %s", summary)
	s.reloads++
	s.emit(Happening{Kind: KindReload, Reason: summary})
	return ReloadSummary{Added: added, Removed: removed, ReAdded: readded, Restarted: restarted, Updated: updated,
		Unchanged: unchanged, Files: len(cfg.Files)}, nil
}

// ReloadSummary is what a reload did: the services it started, stopped,
// took back while they were still stopping, restarted (with a new
// definition, or an operator-stopped "always" one started again), and gave
// new restart settings without a restart; how many kept their definition;
// and how many files it read.
type ReloadSummary struct {
	Added, Removed, ReAdded, Restarted, Updated []string
	Unchanged                                   int
	Files                                       int
}

// reloadRefused reports a config that did not load; nothing changed.
func (s *Supervisor) reloadRefused(err error) {
	s.log.Errorf("reload: the config is invalid, nothing changed:\n%v", err)
	s.reloadFailures++
	s.emit(Happening{Kind: KindReload, Reason: "refused: the config is invalid; nothing changed"})
}

// ErrConflict is a command the service's state does not allow.
var ErrConflict = errors.New("refused")
