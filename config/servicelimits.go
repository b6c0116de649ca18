package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// What a service's process is given besides its command (issue 20): the
// resource limits, umask, nice value and OOM score adjustment it starts
// with, and in cgroup mode the limits of its cgroup. (config/limits.go is
// something else: the bounds of the config file itself.)

// Unlimited is an Rlimit's Value for "unlimited" (RLIM_INFINITY).
const Unlimited = math.MaxUint64

// Rlimit is one entry of limits = { NAME = VALUE }: the soft and the hard
// limit both become Value.
type Rlimit struct {
	Name     string // as written: "nofile"
	Resource int    // unix.RLIMIT_NOFILE
	Value    uint64 // Unlimited for "unlimited"
}

// rlimitKind is what a limit's values count.
type rlimitKind int

const (
	countLimit  rlimitKind = iota // a number of things: nofile, nproc
	byteLimit                     // bytes: "64M" is allowed
	secondLimit                   // seconds of CPU
)

// rlimits are the limit names tend knows, as prlimit(1) and ulimit name
// them (lower case, without RLIMIT_).
var rlimits = map[string]struct {
	resource int
	kind     rlimitKind
}{
	"as":         {unix.RLIMIT_AS, byteLimit},
	"core":       {unix.RLIMIT_CORE, byteLimit},
	"cpu":        {unix.RLIMIT_CPU, secondLimit},
	"data":       {unix.RLIMIT_DATA, byteLimit},
	"fsize":      {unix.RLIMIT_FSIZE, byteLimit},
	"locks":      {unix.RLIMIT_LOCKS, countLimit},
	"memlock":    {unix.RLIMIT_MEMLOCK, byteLimit},
	"msgqueue":   {unix.RLIMIT_MSGQUEUE, byteLimit},
	"nofile":     {unix.RLIMIT_NOFILE, countLimit},
	"nproc":      {unix.RLIMIT_NPROC, countLimit},
	"rtprio":     {unix.RLIMIT_RTPRIO, countLimit},
	"sigpending": {unix.RLIMIT_SIGPENDING, countLimit},
	"stack":      {unix.RLIMIT_STACK, byteLimit},
}

// RlimitNames lists the limit names tend knows, sorted.
func RlimitNames() []string { return slices.Sorted(maps.Keys(rlimits)) }

// RlimitResource is the resource (unix.RLIMIT_*) of a known limit name.
func RlimitResource(name string) (int, bool) {
	r, ok := rlimits[name]
	return r.resource, ok
}

// IsByteLimit reports whether the limit of that name counts bytes.
func IsByteLimit(name string) bool { return rlimits[name].kind == byteLimit }

// HasChildSettings reports whether the service sets anything that its
// process must get before its program runs (limits, umask, nice,
// oom_score_adj): tend then starts it through its exec shim.
func (s *Service) HasChildSettings() bool {
	return len(s.Limits) > 0 || s.Umask != nil || s.Nice != nil || s.OOMScoreAdj != nil
}

// HasCgroupLimits reports whether the service sets a limit of its cgroup.
func (s *Service) HasCgroupLimits() bool {
	return s.MemoryMax != 0 || s.CPUMax != 0 || s.PidsMax != 0
}

// CPUMaxPeriod is the period tend writes to cpu.max, in microseconds
// (the kernel's default): cpu_max = 1.5 is "150000 100000".
const CPUMaxPeriod = 100000

// CPUMaxFile is what cpu_max writes to cpu.max: quota and period.
func (s *Service) CPUMaxFile() string {
	return fmt.Sprintf("%d %d", int64(math.Round(s.CPUMax*CPUMaxPeriod)), CPUMaxPeriod)
}

// serviceLimits reads the keys of this file into s.
func (p *parser) serviceLimits(t *table, s *Service) {
	s.Limits = p.rlimits(t)
	if v, ok := t.get("umask"); ok {
		str, isStr := v.(string)
		n, err := strconv.ParseUint(strings.TrimPrefix(str, "0o"), 8, 32)
		switch {
		case !isStr:
			t.errorf("umask", "must be an octal string such as \"027\", not %s (quote it: TOML reads 027 as no number, and 0o27 loses how it was written)", typeName(v))
		case err != nil || str == "" || n > 0o777:
			t.errorf("umask", "%q is not an octal umask from \"000\" to \"777\" (for example \"027\": no write for the group, nothing for others)", str)
		default:
			m := int(n)
			s.Umask = &m
		}
	}
	s.Nice = t.intIn("nice", -20, 19, "-20 (most favoured) to 19 (least)")
	s.OOMScoreAdj = t.intIn("oom_score_adj", -1000, 1000, "-1000 (never killed for memory) to 1000 (killed first)")

	if v, ok := t.get("memory_max"); ok {
		if n, msg := sizeValue(v, false); msg != "" {
			t.errorf("memory_max", "%s", msg)
		} else if n == 0 {
			t.errorf("memory_max", "must be more than 0 bytes; remove the key for no limit")
		} else {
			s.MemoryMax = int64(min(n, math.MaxInt64))
		}
	}
	if v, ok := t.get("cpu_max"); ok {
		var f float64
		var err error
		switch x := v.(type) {
		case string:
			f, err = strconv.ParseFloat(x, 64)
		case float64:
			f = x
		case int64:
			f = float64(x)
		default:
			err = fmt.Errorf("not a number")
		}
		switch {
		case err != nil:
			t.errorf("cpu_max", "must be a number of CPUs such as 1.5 or \"0.5\", not %s", valueText(v))
		case !(f >= 0.01) || f > 1e6:
			t.errorf("cpu_max", "%v CPUs is out of range: use 0.01 (1%% of a CPU) or more", f)
		default:
			s.CPUMax = f
		}
	}
	if v, ok := t.get("pids_max"); ok {
		n, isInt := v.(int64)
		switch {
		case !isInt:
			t.errorf("pids_max", "must be an integer number of processes and threads, such as 100, not %s", valueText(v))
		case n < 1:
			t.errorf("pids_max", "must be 1 or more, got %d; remove the key for no limit", n)
		default:
			s.PidsMax = n
		}
	}
}

// intIn reads an optional integer from lo to hi (nil when absent or wrong).
func (t *table) intIn(name string, lo, hi int64, what string) *int {
	v, ok := t.get(name)
	if !ok {
		return nil
	}
	n, isInt := v.(int64)
	switch {
	case !isInt:
		t.errorf(name, "must be an integer from %s, not %s", what, valueText(v))
	case n < lo || n > hi:
		t.errorf(name, "%d is out of range: use %s", n, what)
	default:
		i := int(n)
		return &i
	}
	return nil
}

// rlimits reads limits = { NAME = VALUE, ... }.
func (p *parser) rlimits(t *table) []Rlimit {
	lt := t.sub("limits")
	if lt == nil {
		return nil
	}
	var out []Rlimit
	for _, name := range slices.Sorted(maps.Keys(lt.m)) {
		lt.get(name) // known or not, reported here
		r, ok := rlimits[name]
		if !ok {
			msg := fmt.Sprintf("unknown limit %q (known: %s)", name, strings.Join(RlimitNames(), ", "))
			if c := closest(name, RlimitNames()); c != "" {
				msg = fmt.Sprintf("unknown limit %q; did you mean %q? (known: %s)", name, c, strings.Join(RlimitNames(), ", "))
			}
			lt.errorf(name, "%s", msg)
			continue
		}
		v := lt.m[name]
		var n uint64
		var msg string
		if r.kind == byteLimit {
			n, msg = sizeValue(v, true)
		} else {
			n, msg = countValue(v, r.kind)
		}
		if msg != "" {
			lt.errorf(name, "%s", msg)
			continue
		}
		out = append(out, Rlimit{Name: name, Resource: r.resource, Value: n})
	}
	return out
}

// countValue reads a limit that counts things or seconds: an integer of 0
// or more, or "unlimited".
func countValue(v any, kind rlimitKind) (uint64, string) {
	unit := "a number"
	if kind == secondLimit {
		unit = "a number of seconds"
	}
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return 0, fmt.Sprintf("must be 0 or more, got %d", x)
		}
		return uint64(x), ""
	case string:
		if x == "unlimited" || x == "infinity" {
			return Unlimited, ""
		}
		if n, err := strconv.ParseUint(x, 10, 64); err == nil && n != Unlimited {
			return n, ""
		}
	}
	return 0, fmt.Sprintf("must be %s such as 1024, or \"unlimited\", not %s", unit, valueText(v))
}

// sizeValue reads a number of bytes: an integer, or a string of digits
// with an optional K, M, G or T (powers of 1024, "KiB" and "KB" mean the
// same), or with unlimited "unlimited".
func sizeValue(v any, unlimited bool) (uint64, string) {
	bad := func() (uint64, string) {
		also := ""
		if unlimited {
			also = ", or \"unlimited\""
		}
		return 0, fmt.Sprintf("must be a number of bytes such as 65536 or a size such as \"64M\" or \"1G\"%s, not %s", also, valueText(v))
	}
	switch x := v.(type) {
	case int64:
		if x < 0 {
			return 0, fmt.Sprintf("must be 0 or more bytes, got %d", x)
		}
		return uint64(x), ""
	case string:
		if unlimited && (x == "unlimited" || x == "infinity") {
			return Unlimited, ""
		}
		n, ok := parseSize(x)
		if !ok {
			return bad()
		}
		return n, ""
	}
	return bad()
}

// parseSize reads "64M", "1G", "512KiB", "2 MB", "4096": the sizes of the
// byte limits and of output_max_size.
func parseSize(s string) (uint64, bool) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	digits := s[:i]
	unit := strings.ToUpper(strings.TrimSpace(s[i:]))
	shift := map[string]uint{"": 0, "B": 0, "K": 10, "KB": 10, "KIB": 10, "M": 20, "MB": 20, "MIB": 20,
		"G": 30, "GB": 30, "GIB": 30, "T": 40, "TB": 40, "TIB": 40}
	sh, ok := shift[unit]
	if !ok || digits == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n > math.MaxUint64>>sh || n<<sh == Unlimited {
		return 0, false
	}
	return n << sh, true
}

// valueText is a value as a message shows it: its type and what it was.
func valueText(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s %v", typeName(v), v)
}

// FormatSize writes bytes as the largest unit that divides them ("64M").
func FormatSize(n uint64) string {
	if n == Unlimited {
		return "unlimited"
	}
	for _, u := range []struct {
		s  string
		sh uint
	}{{"T", 40}, {"G", 30}, {"M", 20}, {"K", 10}} {
		if n != 0 && n%(1<<u.sh) == 0 {
			return strconv.FormatUint(n>>u.sh, 10) + u.s
		}
	}
	return strconv.FormatUint(n, 10)
}
