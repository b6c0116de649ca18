package tree

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// CgroupLimit is a file of a service's cgroup that tend writes before the
// service's process is put in it (issue 20): memory_max → memory.max.
type CgroupLimit struct {
	Key   string // the config key, for messages: "memory_max"
	File  string // "memory.max"; its controller is what comes before the dot
	Value string // what is written: "536870912"
}

// Applied is what became of a run's cgroup limits, by key: "applied", or
// "not applied: WHY".
type Applied map[string]string

// Limits says what became of the run's cgroup limits (nil: it had none).
func (run *Run) Limits() Applied { return run.applied }

// notApplied is every limit as not applied, for why.
func notApplied(limits []CgroupLimit, why string) Applied {
	if len(limits) == 0 {
		return nil
	}
	a := Applied{}
	for _, l := range limits {
		a[l.Key] = "not applied: " + why
	}
	return a
}

// writeLimits writes limits into the service's cgroup dir, each after
// making sure its controller is enabled for tend's children (enabling it
// when tend can). A limit that cannot be written is reported, never
// skipped in silence; the start goes on without it.
func (cg *cgroups) writeLimits(dir string, limits []CgroupLimit) Applied {
	if len(limits) == 0 {
		return nil
	}
	a := Applied{}
	for _, l := range limits {
		controller, _, _ := strings.Cut(l.File, ".")
		if why := cg.enable(controller); why != "" {
			a[l.Key] = "not applied: " + why
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, l.File), []byte(l.Value), 0); err != nil {
			a[l.Key] = fmt.Sprintf("not applied: cannot write %s to %s: %v", l.Value, filepath.Join(dir, l.File), errors.Unwrap(err))
			continue
		}
		a[l.Key] = "applied"
	}
	return a
}

// enable makes sure controller is in tend's cgroup.subtree_control, so
// that the services' cgroups have its files; "" when it is, else why not.
func (cg *cgroups) enable(controller string) string {
	cg.mu.Lock()
	defer cg.mu.Unlock()
	ctl := filepath.Join(cg.root, "cgroup.subtree_control")
	if b, err := os.ReadFile(ctl); err == nil && slices.Contains(strings.Fields(string(b)), controller) {
		return ""
	}
	if b, err := os.ReadFile(filepath.Join(cg.root, "cgroup.controllers")); err != nil || !slices.Contains(strings.Fields(string(b)), controller) {
		return fmt.Sprintf("the %s controller is not available in tend's cgroup %s (its cgroup.controllers); the host or the container runtime must delegate it", controller, cg.root)
	}
	if err := os.WriteFile(ctl, []byte("+"+controller), 0); err != nil {
		why := fmt.Sprintf("the %s controller is not enabled in %s and tend cannot enable it: %v", controller, ctl, errors.Unwrap(err))
		if errors.Is(err, os.ErrPermission) || strings.Contains(err.Error(), "read-only") {
			return why
		}
		// EBUSY: cgroup v2 lets a cgroup that holds processes (tend)
		// pass no domain controller to its children.
		return why + " (a cgroup that holds processes, tend's own, cannot enable it for its children: enable it before tend starts, from a parent cgroup)"
	}
	return ""
}
