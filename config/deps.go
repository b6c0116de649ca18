package config

import (
	"container/heap"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// order checks depends_on and returns the service names in dependency order:
// each service after everything it depends on, ties broken by name so the
// order is the same on every run. It is Kahn's algorithm with the ready
// services in a heap, so it costs O((services + edges) log services) rather
// than a scan of every service for each one placed.
func (p *parser) order(services map[string]*Service) []string {
	names := slices.Sorted(maps.Keys(services))
	index := make(map[string]int, len(names))
	for i, n := range names {
		index[n] = i
	}
	deps := make([][]int, len(names))       // the valid edges, by index
	dependants := make([][]int, len(names)) // the same edges reversed
	for i, name := range names {
		key := toml.Key{"services", name, "depends_on"}
		for _, d := range services[name].DependsOn {
			j, ok := index[d]
			switch {
			case d == name:
				p.errorf(key, "service %q cannot depend on itself", name)
			case !ok:
				p.errorf(key, "unknown service %q (%s)", d, knownServices(names))
			default:
				deps[i] = append(deps[i], j)
			}
		}
		slices.Sort(deps[i])
		deps[i] = slices.Compact(deps[i]) // a repeat is reported by service
		for _, j := range deps[i] {
			dependants[j] = append(dependants[j], i)
		}
	}

	waiting := make([]int, len(names)) // dependencies not placed yet
	ready := &indexHeap{}
	for i := range names {
		if waiting[i] = len(deps[i]); waiting[i] == 0 {
			ready.ints = append(ready.ints, i) // already in order
		}
	}
	order := make([]string, 0, len(names))
	placed := make([]bool, len(names))
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		placed[i] = true
		order = append(order, names[i])
		for _, j := range dependants[i] {
			if waiting[j]--; waiting[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	if len(order) < len(names) {
		p.cycles(names, deps, dependants, placed)
		return nil
	}
	return order
}

// knownServices says which services exist, listing them only when there are
// few, so that many bad depends_on in a large file do not each print the
// whole file's service names.
func knownServices(names []string) string {
	if len(names) <= 10 {
		return "depend only on services defined in the config: " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("depend only on services defined in the config; it has %d", len(names))
}

// indexHeap is a min-heap of service indexes, which are in name order.
type indexHeap struct{ ints []int }

func (h *indexHeap) Len() int           { return len(h.ints) }
func (h *indexHeap) Less(i, j int) bool { return h.ints[i] < h.ints[j] }
func (h *indexHeap) Swap(i, j int)      { h.ints[i], h.ints[j] = h.ints[j], h.ints[i] }
func (h *indexHeap) Push(x any)         { h.ints = append(h.ints, x.(int)) }
func (h *indexHeap) Pop() any {
	x := h.ints[len(h.ints)-1]
	h.ints = h.ints[:len(h.ints)-1]
	return x
}

// cycles reports the dependency cycles among the services not placed. Every
// one of those still waits for another one that is not placed, so following
// dependencies from any of them must come back to a service already seen.
// Each service is walked at most once: after a cycle is reported, it and
// everything that waits on it (which includes the walk that led to it) are
// dropped.
func (p *parser) cycles(names []string, deps, dependants [][]int, placed []bool) {
	left := make([]bool, len(names))
	onPath := make([]int, len(names)) // position in the current walk, or -1
	for i := range names {
		left[i] = !placed[i]
		onPath[i] = -1
	}
	// The smallest name left starts each walk; names are sorted.
	for start := range names {
		if !left[start] {
			continue
		}
		var path []int
		n := start
		for onPath[n] < 0 {
			onPath[n] = len(path)
			path = append(path, n)
			n = deps[n][slices.IndexFunc(deps[n], func(d int) bool { return left[d] })]
		}
		cycle := slices.Clone(path[onPath[n]:])
		for _, c := range path {
			onPath[c] = -1
		}
		// Start at the smallest name, so one cycle is always told the same way.
		first := slices.Index(cycle, slices.Min(cycle))
		cycle = slices.Concat(cycle[first:], cycle[:first])
		words := make([]string, len(cycle))
		for k, c := range cycle {
			words[k] = names[c]
		}
		p.errorf(toml.Key{"services", words[0], "depends_on"}, "dependency cycle: %s -> %s", strings.Join(words, " -> "), words[0])

		// Drop the cycle and whatever waits on it, then look for another.
		queue := cycle
		for _, c := range cycle {
			left[c] = false
		}
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			for _, r := range dependants[c] {
				if left[r] {
					left[r] = false
					queue = append(queue, r)
				}
			}
		}
	}
}
