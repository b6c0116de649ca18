// Package supervise keeps services running: the restart state machine of
// SPEC section 5 (machine.go) and the lifecycle table around it
// (lifecycle.go), both pure functions, and the supervisor that carries
// their decisions out with processes, timers and signals. It never makes a
// raw process syscall; children go through the reaper and the process
// tracker (package tree).
//
// Files, one idea each: machine.go the restart machine; lifecycle.go the
// state × event table; tendlife.go tend's own lifecycle and exit status;
// supervisor.go the loop; inbox.go how other goroutines reach it (a closure
// each); runs.go starting, stopping and the end of a run; checks.go
// readiness and health; notify.go sd_notify; deps.go the dependency graph;
// shutdown.go the graceful shutdown; reload.go a new config; api.go what
// the control API asks; output.go, outqueue.go and logs.go the services'
// output and its recent lines; events.go and metrics.go the event stream
// and the metrics.
package supervise
