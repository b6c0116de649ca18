// Package signals decides which signals tend handles, how they are
// rewritten, and where they are delivered. It is the only place that knows
// the list of signals tend subscribes to.
package signals

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Linux numbers the real-time signals 32..64. glibc keeps 32 and 33 for
// itself and calls 34 SIGRTMIN; tend is static Go, so all of them are free,
// and names follow the kill(1) convention (RTMIN+n counts from 34).
const (
	firstRT = 32
	rtMin   = 34
	rtMax   = 64
)

// Max is the highest signal number Linux delivers.
const Max = rtMax

// byName is built on first use: wrapper mode without -r never parses a
// signal name, and start-up does not pay for the map.
var byName = sync.OnceValue(func() map[string]unix.Signal {
	m := map[string]unix.Signal{}
	for n := unix.Signal(1); n < firstRT; n++ {
		if name := unix.SignalName(n); name != "" {
			m[strings.TrimPrefix(name, "SIG")] = n
		}
	}
	// Aliases the kernel headers define and users type.
	m["IOT"] = unix.SIGABRT
	m["POLL"] = unix.SIGIO
	m["CLD"] = unix.SIGCHLD
	m["PWR"] = unix.SIGPWR
	return m
})

// Parse reads a signal given as a name with or without "SIG" (any case),
// as "RTMIN+n"/"RTMAX-n", or as a number from 1 to 64.
func Parse(s string) (unix.Signal, error) {
	orig := s
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > rtMax {
			return 0, fmt.Errorf("signal number %d is out of range 1-%d", n, rtMax)
		}
		return unix.Signal(n), nil
	}
	up := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := byName()[up]; ok {
		return sig, nil
	}
	if sig, ok := parseRT(up); ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q (use a name such as TERM or SIGUSR1, or a number 1-%d)", orig, rtMax)
}

func parseRT(up string) (unix.Signal, bool) {
	base, rest, sign := 0, "", 1
	switch {
	case up == "RTMIN":
		return rtMin, true
	case up == "RTMAX":
		return rtMax, true
	case strings.HasPrefix(up, "RTMIN+"):
		base, rest = rtMin, up[len("RTMIN+"):]
	case strings.HasPrefix(up, "RTMAX-"):
		base, rest, sign = rtMax, up[len("RTMAX-"):], -1
	default:
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, false
	}
	sig := base + sign*n
	if sig < rtMin || sig > rtMax {
		return 0, false
	}
	return unix.Signal(sig), true
}

// Name is the conventional name of sig ("SIGTERM", "SIGRTMIN+3", "SIG33").
func Name(sig unix.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	switch {
	case sig >= rtMin && sig <= rtMax:
		if sig == rtMin {
			return "SIGRTMIN"
		}
		return fmt.Sprintf("SIGRTMIN+%d", int(sig)-rtMin)
	default:
		return fmt.Sprintf("SIG%d", int(sig))
	}
}
