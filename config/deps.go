package config

import (
	"maps"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// order checks depends_on and returns the service names in dependency order:
// each service after everything it depends on, ties broken by name so the
// order is the same on every run.
func (p *parser) order(services map[string]*Service) []string {
	names := slices.Sorted(maps.Keys(services))
	deps := make(map[string][]string, len(names)) // only the valid edges
	for _, name := range names {
		key := toml.Key{"services", name, "depends_on"}
		for _, d := range services[name].DependsOn {
			switch {
			case d == name:
				p.errorf(key, "service %q cannot depend on itself", name)
			case services[d] == nil:
				p.errorf(key, "unknown service %q (depend only on services defined in this file: %s)", d, strings.Join(names, ", "))
			default:
				deps[name] = append(deps[name], d)
			}
		}
		slices.Sort(deps[name])
	}

	var order []string
	placed := make(map[string]bool, len(names))
	ready := func(name string) bool {
		if placed[name] {
			return false
		}
		for _, d := range deps[name] {
			if !placed[d] {
				return false
			}
		}
		return true
	}
	for len(order) < len(names) {
		i := slices.IndexFunc(names, ready)
		if i < 0 {
			p.cycles(names, deps, placed)
			return nil
		}
		placed[names[i]] = true
		order = append(order, names[i])
	}
	return order
}

// cycles reports the dependency cycles among the services not placed. Every
// one of those still waits for another one, so following dependencies from
// any of them must come back to a service already seen.
func (p *parser) cycles(names []string, deps map[string][]string, placed map[string]bool) {
	left := make(map[string]bool)
	for _, n := range names {
		if !placed[n] {
			left[n] = true
		}
	}
	for len(left) > 0 {
		var path []string
		n := slices.Sorted(maps.Keys(left))[0]
		for !slices.Contains(path, n) {
			path = append(path, n)
			n = deps[n][slices.IndexFunc(deps[n], func(d string) bool { return left[d] })]
		}
		cycle := path[slices.Index(path, n):]
		// Start at the smallest name, so one cycle is always told the same way.
		first := slices.Index(cycle, slices.Min(cycle))
		cycle = slices.Concat(cycle[first:], cycle[:first])
		p.errorf(toml.Key{"services", cycle[0], "depends_on"}, "dependency cycle: %s -> %s", strings.Join(cycle, " -> "), cycle[0])

		// Drop the cycle and whatever waits on it, then look for another.
		for _, c := range cycle {
			delete(left, c)
		}
		for changed := true; changed; {
			changed = false
			for n := range left {
				if slices.ContainsFunc(deps[n], func(d string) bool { return !left[d] && !placed[d] }) {
					delete(left, n)
					changed = true
				}
			}
		}
	}
}
