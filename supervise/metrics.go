package supervise

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
)

var allStates = []State{Idle, Running, Restarting, Stopping, Stopped, CrashLoopBackoff, MaxRestartsReached}

// Metrics renders GET /metrics in the Prometheus text exposition format
// (version 0.0.4): every service's state (one series per state, 1 for the
// one it is in), readiness, health, restarts, last exit code, uptime and
// start time, and tend's own reloads and reaped orphans.
func (s *Supervisor) Metrics() ([]byte, error) {
	return call(s, s.metrics)
}

func (s *Supervisor) metrics() []byte {
	var b bytes.Buffer
	family := func(name, kind, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	var live []*service
	for _, svc := range s.order {
		if svc.goal != GoalRemoved {
			live = append(live, svc)
		}
	}
	family("tend_service_state", "gauge", "The state a service is in: 1 for its state, 0 for the others.")
	for _, svc := range live {
		for _, st := range allStates {
			fmt.Fprintf(&b, "tend_service_state{service=%s,state=%q} %d\n", label(svc.name), st, one(svc.state == st))
		}
	}
	perService := []struct {
		name, kind, help string
		value            func(*service) (float64, bool)
	}{
		{"tend_service_ready", "gauge", "1 when the service is ready.", func(svc *service) (float64, bool) { return float64(one(svc.isReady())), true }},
		{"tend_service_healthy", "gauge", "1 when the service runs and its health check passes.", func(svc *service) (float64, bool) {
			return float64(one(svc.state == Running && svc.healthy)), true
		}},
		{"tend_service_restarts_total", "counter", "Processes started after the service's first.", func(svc *service) (float64, bool) {
			return float64(max(0, svc.starts-1)), true
		}},
		{"tend_service_last_exit_code", "gauge", "Exit code of the last process, 128+N when killed by signal N.", func(svc *service) (float64, bool) {
			if svc.lastExit == nil {
				return 0, false
			}
			return float64(svc.lastExit.Code()), true
		}},
		{"tend_service_uptime_seconds", "gauge", "How long the current process has run.", func(svc *service) (float64, bool) {
			if svc.pid == 0 {
				return 0, false
			}
			return s.now().Sub(svc.started).Seconds(), true
		}},
		{"tend_service_start_time_seconds", "gauge", "When the current process started, in seconds since the epoch.", func(svc *service) (float64, bool) {
			if svc.pid == 0 {
				return 0, false
			}
			return float64(svc.started.UnixNano()) / 1e9, true
		}},
	}
	for _, m := range perService {
		family(m.name, m.kind, m.help)
		for _, svc := range live {
			if v, ok := m.value(svc); ok {
				fmt.Fprintf(&b, "%s{service=%s} %s\n", m.name, label(svc.name), num(v))
			}
		}
	}
	family("tend_reloads_total", "counter", "Reloads applied.")
	fmt.Fprintf(&b, "tend_reloads_total %d\n", s.reloads)
	family("tend_reload_failures_total", "counter", "Reloads refused because the config was invalid.")
	fmt.Fprintf(&b, "tend_reload_failures_total %d\n", s.reloadFailures)
	if s.opt.Orphans != nil {
		family("tend_orphans_reaped_total", "counter", "Processes reaped that tend did not start itself.")
		fmt.Fprintf(&b, "tend_orphans_reaped_total %d\n", s.opt.Orphans())
	}
	family("tend_output_lines_dropped_total", "counter", "Service output lines dropped because tend's stdout or stderr was stalled after their run had ended.")
	fmt.Fprintf(&b, "tend_output_lines_dropped_total %d\n", s.linesDropped.Load())
	family("go_goroutines", "gauge", "Goroutines in tend: constant per service, whatever the number of restarts.")
	fmt.Fprintf(&b, "go_goroutines %d\n", runtime.NumGoroutine())
	return b.Bytes()
}

func one(b bool) int {
	if b {
		return 1
	}
	return 0
}

func num(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%.3f", v), ".000") }

// label quotes a label value as the exposition format wants it.
func label(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}
