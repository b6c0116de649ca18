package supervise

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/execshim"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/tree"
)

// tendHardLimits are tend's own hard resource limits, read once, at the
// first start that needs them (tend never changes its own): a service's
// limits may not go above them. Only a process with CAP_SYS_RESOURCE
// could, and a limit that works only where tend happens to have that
// capability is a surprise waiting for the next host.
var tendHardLimits = sync.OnceValue(func() map[int]uint64 {
	m := map[int]uint64{}
	for _, name := range config.RlimitNames() {
		res, _ := config.RlimitResource(name)
		var lim syscall.Rlimit
		if syscall.Getrlimit(res, &lim) == nil {
			m[res] = lim.Max
		}
	}
	return m
})

// shimmed makes cmd start through the exec shim, which gives the
// process spec's limits, umask, nice and oom_score_adj before the program
// runs (package execshim says why it takes a shim). The program is looked
// up here, so that a missing one fails the start as it would without the
// shim; so does a limit above tend's own hard limit. The shim changes the
// credentials itself, after the settings that need privileges.
func shimmed(cmd reaper.Cmd, spec *config.Service) (reaper.Cmd, error) {
	path, err := reaper.LookPath(cmd.Args[0], cmd.Env)
	if err != nil {
		return cmd, err
	}
	hard := tendHardLimits()
	s := execshim.Settings{Umask: spec.Umask, Nice: spec.Nice, OOMScoreAdj: spec.OOMScoreAdj}
	for _, r := range spec.Limits {
		if h, ok := hard[r.Resource]; ok && h != config.Unlimited && r.Value > h {
			return cmd, fmt.Errorf("limits.%s = %s is above tend's own hard limit of %s, which no service can exceed: lower it, or start tend with a higher one (docker run --ulimit %s=N, %s=N in a systemd unit, ulimit -H in a shell)",
				r.Name, limitText(r.Name, r.Value), limitText(r.Name, h), r.Name, systemdName(r.Name))
		}
		s.Rlimits = append(s.Rlimits, execshim.Rlimit{Name: r.Name, Resource: r.Resource, Value: r.Value})
	}
	if cmd.Sys != nil && cmd.Sys.Credential != nil {
		s.Cred = cmd.Sys.Credential
		sys := *cmd.Sys
		sys.Credential = nil
		cmd.Sys = &sys
	}
	cmd.Args = execshim.Argv(path, cmd.Args, s)
	return cmd, nil
}

func limitText(name string, v uint64) string {
	switch {
	case v == config.Unlimited:
		return "unlimited"
	case config.IsByteLimit(name):
		if s := config.FormatSize(v); s != fmt.Sprint(v) {
			return fmt.Sprintf("%d (%s)", v, s)
		}
	}
	return fmt.Sprint(v)
}

// systemdName is a limit's name in a systemd unit: LimitNOFILE.
func systemdName(name string) string { return "Limit" + strings.ToUpper(name) }

// cgroupLimits are the files of the service's cgroup its keys ask for.
func cgroupLimits(spec *config.Service) []tree.CgroupLimit {
	var l []tree.CgroupLimit
	if spec.MemoryMax != 0 {
		l = append(l, tree.CgroupLimit{Key: "memory_max", File: "memory.max", Value: strconv.FormatInt(spec.MemoryMax, 10)})
	}
	if spec.CPUMax != 0 {
		l = append(l, tree.CgroupLimit{Key: "cpu_max", File: "cpu.max", Value: spec.CPUMaxFile()})
	}
	if spec.PidsMax != 0 {
		l = append(l, tree.CgroupLimit{Key: "pids_max", File: "pids.max", Value: strconv.FormatInt(spec.PidsMax, 10)})
	}
	return l
}

// noteLimits keeps what became of the run's cgroup limits for the status,
// and warns of each one that does not apply: once, not at every restart,
// unless the reason changes.
func (s *Supervisor) noteLimits(svc *service, run ServiceRun) {
	svc.limits = nil
	if r, ok := run.(interface{ Limits() tree.Applied }); ok {
		svc.limits = r.Limits()
	}
	var not []string
	for _, key := range slices.Sorted(maps.Keys(svc.limits)) {
		if why, ok := strings.CutPrefix(svc.limits[key], "not applied: "); ok {
			not = append(not, fmt.Sprintf("%s is not applied: %s", key, why))
		}
	}
	warning := strings.Join(not, "; ")
	if warning != "" && warning != svc.warned {
		svc.logger(s.log).Warnf("%s", warning)
	}
	svc.warned = warning
}
