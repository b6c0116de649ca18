package config

import (
	"maps"
	"slices"
	"strings"
)

// envBase is tend's own environment as services inherit it: one entry per
// name (the last one given), sorted by name. It is built once per file; a service that
// changes nothing shares its list, and the others reuse its strings, so a
// file of many services does not hold a copy of tend's environment each.
type envBase struct {
	names []string // sorted
	list  []string // "NAME=VALUE" for each of names; cap == len, so an append copies
}

func newEnvBase(env []string) *envBase {
	byName := make(map[string]string, len(env))
	for _, kv := range env {
		if name, _, ok := strings.Cut(kv, "="); ok && name != "" {
			byName[name] = kv
		}
	}
	b := &envBase{names: slices.Sorted(maps.Keys(byName))}
	b.list = make([]string, len(b.names))
	for i, n := range b.names {
		b.list[i] = byName[n]
	}
	return b
}

func (p *parser) envBase() *envBase {
	if p.env0 == nil {
		p.env0 = newEnvBase(p.opts.baseEnv)
	}
	return p.env0
}

// serviceEnv builds a service's environment: tend's own; when account is not
// nil (the service has a user), its HOME, USER, LOGNAME and SHELL instead of
// tend's; then the service's environment table (extra) over everything.
// Sorted by name, so it compares equal across reloads. The result may be
// shared with other services: never change it in place.
func (b *envBase) serviceEnv(account, extra map[string]string) []string {
	if account == nil && len(extra) == 0 {
		return b.list
	}
	over := make(map[string]string, len(account)+len(extra))
	maps.Copy(over, account)
	maps.Copy(over, extra)
	var added []string // names tend's environment does not have
	for n := range over {
		if _, found := slices.BinarySearch(b.names, n); !found {
			added = append(added, n)
		}
	}
	slices.Sort(added)

	env := make([]string, 0, len(b.list)+len(added))
	j := 0
	for i, n := range b.names {
		for ; j < len(added) && added[j] < n; j++ {
			env = append(env, added[j]+"="+over[added[j]])
		}
		if v, ok := over[n]; ok {
			env = append(env, n+"="+v)
		} else if account == nil || !slices.Contains(accountKeys, n) {
			env = append(env, b.list[i])
		}
	}
	for ; j < len(added); j++ {
		env = append(env, added[j]+"="+over[added[j]])
	}
	return env
}

func envName(kv string) string {
	name, _, _ := strings.Cut(kv, "=")
	return name
}
