package supervise

import (
	"fmt"
	"time"
)

// What health_listen's probes ask (GET /livez and /readyz): is tend alive,
// and is every service that should be ready ready. Both are answered on
// the supervisor's goroutine, within probeWait.

// probeWait bounds how long a probe waits for the supervisor: far longer
// than its goroutine ever takes to answer, and no longer than a kubelet
// waits by default (timeoutSeconds: 1). A supervisor that has not answered
// by then is not live, and the probe's connection slot is not held for
// the 10 s that other requests may wait (requestWait).
const probeWait = time.Second

// Live reports whether tend is alive: its supervisor loop answers within
// probeWait, and no essential service has given up. An essential service
// gives up when it ends in max-restarts-reached, in stopped after an
// unclean exit (a oneshot that failed, or a service whose restart policy
// does not restart it), or cannot start because a dependency gave up;
// crash-loop-backoff is not giving up, since it starts again. tend then
// shuts down, and stays not live until it exits. Any other shutdown
// (SIGTERM, tend ctl shutdown, the main program's end) leaves it live: it
// is doing what it was told. The reasons say what is wrong.
func (s *Supervisor) Live() (bool, []string, error) {
	r, err := callWithin(s, probeWait, func() healthResult {
		if s.essentialGaveUp != "" {
			return healthResult{reasons: []string{fmt.Sprintf("essential service %s, so tend is shutting down", s.essentialGaveUp)}}
		}
		return healthResult{ok: true}
	})
	return r.ok, r.reasons, err
}

// Ready reports whether every service that should be ready is ready, for
// GET /readyz. A service should be ready unless an operator stopped it
// (tend ctl stop: it is meant to be down until tend ctl start) or a
// reload removed it. Ready means: running, its readiness check passed
// (a service without one is ready once started) and its health check not
// failed; for a oneshot, that it exited cleanly. A main program that has
// not started yet (it waits for the services) is not ready either. While
// tend shuts down nothing is ready. The reasons name what is not.
func (s *Supervisor) Ready() (bool, []string, error) {
	r, err := callWithin(s, probeWait, func() healthResult {
		if s.life.Phase != PhaseRunning {
			return healthResult{reasons: []string{fmt.Sprintf("tend is shutting down (%s)", s.life.Reason)}}
		}
		var reasons []string
		for _, svc := range s.order {
			if svc.goal == GoalRemoved || svc.goal == GoalHeld {
				continue
			}
			if why := svc.notGood(); why != "" {
				reasons = append(reasons, why)
			}
		}
		if s.life.Main == MainWaiting {
			reasons = append(reasons, "the main program has not started: it waits for every service to be ready")
		}
		return healthResult{ok: len(reasons) == 0, reasons: reasons}
	})
	return r.ok, r.reasons, err
}
