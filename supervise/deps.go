package supervise

import (
	"fmt"
)

// depGraph is what the supervisor knows of depends_on: each service's level
// (services on one level start and stop together), who depends on whom, and
// which idle services may be able to start since the last look. It keeps
// the work of one event proportional to the services it touches, so 10,000
// services start and stop in linear time.
type depGraph struct {
	dependants map[string][]*service
	live       map[int]int // services running or stopping, by level
	dirty      []*service  // idle services to look at again
	marked     map[*service]bool
	// Something changed that may let the main program start or tend end.
	readyMaybe, finalMaybe bool
}

// rebuild takes a new order (dependencies first; removed services still
// stopping at the end, keeping their level) and looks at every service.
func (g *depGraph) rebuild(order []*service, services map[string]*service) {
	// Cleared, not made anew: a reload of many services then does not
	// grow three maps from nothing, key by key.
	if g.dependants == nil {
		g.dependants = make(map[string][]*service, len(order))
		g.live = map[int]int{}
		g.marked = make(map[*service]bool, len(order))
	}
	clear(g.dependants)
	clear(g.live)
	clear(g.marked)
	g.dirty = g.dirty[:0]
	for _, svc := range order {
		if svc.goal != GoalRemoved {
			svc.level = 0
			for _, dep := range svc.spec.DependsOn {
				if d := services[dep]; d != nil {
					svc.level = max(svc.level, d.level+1)
				}
				g.dependants[dep] = append(g.dependants[dep], svc)
			}
		}
		if svc.state == Running || svc.state == Stopping {
			g.live[svc.level]++
		}
		g.mark(svc)
	}
	g.readyMaybe, g.finalMaybe = true, true
}

func (g *depGraph) mark(svc *service) {
	if !g.marked[svc] {
		g.marked[svc] = true
		g.dirty = append(g.dirty, svc)
	}
}

// touch: svc's readiness may have changed; its dependants look again.
func (g *depGraph) touch(svc *service) {
	for _, d := range g.dependants[svc.name] {
		g.mark(d)
	}
	g.readyMaybe, g.finalMaybe = true, true
}

// changed keeps the live counts as svc leaves state from.
func (g *depGraph) changed(svc *service, from State) {
	if from == Running || from == Stopping {
		g.live[svc.level]--
	}
	if svc.state == Running || svc.state == Stopping {
		g.live[svc.level]++
	}
	g.touch(svc)
}

func (g *depGraph) forget(svc *service) {
	delete(g.marked, svc)
	g.finalMaybe = true
}

// take returns the services to look at, in the order they were marked.
func (g *depGraph) take() []*service {
	batch := g.dirty
	g.dirty = nil
	clear(g.marked)
	return batch
}

// highestLive is the deepest level that still has a process, or -1.
func (g *depGraph) highestLive() int {
	level := -1
	for l, n := range g.live {
		if n > 0 && l > level {
			level = l
		}
	}
	return level
}

// startWhatCan starts idle services whose dependencies are ready, and marks
// those whose dependency gave up.
func (s *Supervisor) startWhatCan() {
	for batch := s.deps.take(); len(batch) > 0; batch = s.deps.take() {
		for _, svc := range batch {
			if s.life.Phase != PhaseRunning {
				return
			}
			if !s.current(svc) || svc.state != Idle || svc.goal != GoalRun {
				continue
			}
			if s.dependenciesReady(svc) {
				s.event(svc, DepsReady, "dependencies ready")
				continue
			}
			why := s.dependencyFailed(svc)
			if why == "" || svc.blocked == why {
				continue
			}
			svc.blocked = why
			svc.logger(s.log).Errorf("not started: %s", why)
			s.event(svc, DepGaveUp, "")
			s.deps.touch(svc)
			s.noticeEssential(svc)
		}
	}
}

func (s *Supervisor) dependencyFailed(svc *service) string {
	for _, dep := range svc.spec.DependsOn {
		if d := s.services[dep]; d != nil && d.gaveUp() {
			return fmt.Sprintf("dependency %s %s", dep, d.gaveUpReason())
		}
	}
	return ""
}

func (s *Supervisor) dependenciesReady(svc *service) bool {
	for _, dep := range svc.spec.DependsOn {
		if d := s.services[dep]; d == nil || !d.isReady() {
			return false
		}
	}
	return true
}

// allReady: every service in the config is ready. It stops at the first
// that is not, which in dependency order is usually near the front.
func (s *Supervisor) allReady() bool {
	for _, svc := range s.order {
		if svc.goal != GoalRemoved && !svc.isReady() {
			return false
		}
	}
	return true
}

func (s *Supervisor) notReady() []string {
	var names []string
	for _, svc := range s.order {
		if svc.goal != GoalRemoved && !svc.isReady() {
			names = append(names, fmt.Sprintf("%s (%s)", svc.name, svc.describe()))
		}
	}
	return names
}
