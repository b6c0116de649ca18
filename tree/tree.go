// Package tree knows every process of a service, not only the one tend
// started: the workers it forks, the processes that leave its group, the
// daemons that double-fork. A stop is complete only when all of them are
// gone, and a new run starts only then, so two generations of a service
// never run at once.
//
// Two mechanisms, chosen once at start (docs/lifecycle.md, "A service is
// its whole process tree"):
//
//   - cgroup: where tend can write a cgroup v2 tree, each service runs in a
//     child cgroup of tend's own (clone3 with CLONE_INTO_CGROUP, so not even
//     the first fork is outside it). Membership is the kernel's: nothing
//     escapes, cgroup.kill ends them all, cgroup.events says "populated 0"
//     when the last is gone.
//   - session: everywhere else. Each service starts as the leader of a new
//     session (setsid), which makes its main process unable to leave its
//     process group and keeps every process that changes group inside the
//     session. Before a stop signal and after the main process exits, one
//     pass over /proc finds the service's processes: its session, its
//     process group, their descendants, and those found before; the ones
//     outside the process group are remembered (pid and start time, so a
//     reused PID is never taken for them) and signalled one by one. Only a
//     process that calls setsid itself and is orphaned before tend's next
//     look escapes; tend's final sweep still ends it at shutdown.
//
// Once a service's main process is gone, every other process of it ends as
// a child of tend (PID 1 or subreaper): the reaper's orphan hook is when
// the tracker looks again, so it never polls.
package tree

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/reaper"
)

// Mechanism is how a service's processes are found.
type Mechanism string

const (
	Cgroup  Mechanism = "cgroup"
	Session Mechanism = "session"
)

// Watch is what the owner of a run is told. Both are called on the
// reaper's or the tracker's goroutine and must not block.
type Watch struct {
	// Exited: the main process ended; left is how many other processes of
	// the run are still alive (0: the run is over, Emptied is not called).
	Exited func(e reaper.Exit, left int)
	// Emptied: after Exited with left > 0, the last of them is gone.
	Emptied func()
	// Limits are written to the run's cgroup before its process starts
	// in it; without a cgroup they are reported as not applied (Run.Limits).
	Limits []CgroupLimit
}

// Tracker starts services and keeps track of their processes.
type Tracker struct {
	r      *reaper.Reaper
	cg     *cgroups // nil: session mechanism
	notice string   // why there is no cgroup, for the one line at start

	mu       sync.Mutex
	draining map[*Run]bool // main process gone, others left (session runs)
	requests []request     // for the surveyor
	wake     chan struct{}
	self     int
}

// New makes a tracker over r. With useCgroups false, or when the cgroup
// tree cannot be used, every service uses the session mechanism; Notice
// says why.
func New(r *reaper.Reaper, useCgroups bool) *Tracker {
	t := &Tracker{r: r, draining: map[*Run]bool{}, wake: make(chan struct{}, 1), self: os.Getpid()}
	if useCgroups {
		t.cg, t.notice = openCgroups()
	} else {
		t.notice = "cgroups turned off (cgroups = false)"
	}
	r.WatchOrphans(t.orphanReaped)
	guard.Go("process survey", t.survey)
	return t
}

// Notice is the one line tend logs at start about how it tracks services.
func (t *Tracker) Notice() string {
	if cg := t.cgroups(); cg != nil {
		return "each service runs in its own cgroup under " + cg.root
	}
	return "services are tracked by session and process group: " + t.notice
}

func (t *Tracker) cgroups() *cgroups {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cg
}

// Run is one run of a service: its main process and everything it started.
type Run struct {
	t       *Tracker
	service string
	pid     int // the main process; also its session and process group
	watch   Watch
	cgroup  string   // the run's cgroup directory; "" in session mode
	cg      *cgroups // its tree, in cgroup mode
	applied Applied  // what became of watch.Limits

	// Under t.mu.
	exit       *reaper.Exit
	stopping   bool           // a stop was asked: after the exit a cheap look is enough
	escapees   map[int]uint64 // members outside the process group: pid → start time
	told       bool           // Exited was called
	emptied    bool           // the run is over, and its owner was told
	surveyWait bool           // Exited waits for a survey
	pending    int            // surveys asked for and not served yet
}

// Pid is the run's main process.
func (run *Run) Pid() int { return run.pid }

// Tracking is the mechanism of this run and, in cgroup mode, its cgroup.
func (run *Run) Tracking() (Mechanism, string) {
	if run.cgroup != "" {
		return Cgroup, run.cgroup
	}
	return Session, ""
}

// Start runs c as a new run of service. c.Sys is changed: the run is a
// session leader, and in cgroup mode starts inside the service's cgroup.
func (t *Tracker) Start(service string, c reaper.Cmd, w Watch) (*Run, error) {
	sys := &syscall.SysProcAttr{}
	if c.Sys != nil {
		*sys = *c.Sys
	}
	// setsid, not setpgid: a session leader cannot change its process
	// group (EPERM), and a process that changes group stays in the session.
	sys.Setsid, sys.Setpgid, sys.Pgid = true, false, 0
	c.Sys = sys
	run := &Run{t: t, service: service, watch: w}
	if cg := t.cgroups(); cg != nil {
		dir, fd, err := cg.prepare(service)
		if err == nil {
			sys.UseCgroupFD, sys.CgroupFD = true, fd
			run.cgroup, run.cg = dir, cg
			run.applied = cg.writeLimits(dir, w.Limits)
			err := t.startRun(run, c)
			unix.Close(fd)
			if err == nil || !cloneIntoCgroupRefused(err) {
				return run, err
			}
			t.giveUpCgroups(fmt.Sprintf("the kernel refused to start a process in a cgroup (%v)", err))
		} else {
			t.giveUpCgroups(err.Error())
		}
		sys.UseCgroupFD, sys.CgroupFD = false, 0
		run.cgroup, run.cg = "", nil
	}
	t.mu.Lock()
	notice := t.notice
	t.mu.Unlock()
	run.applied = notApplied(w.Limits, "no cgroup for the service: "+notice)
	err := t.startRun(run, c)
	return run, err
}

// startRun forks under t.mu, so the exit callback, which takes it too,
// finds the run complete even when the process ended at once.
func (t *Tracker) startRun(run *Run, c reaper.Cmd) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	pid, err := t.r.Start(c, func(e reaper.Exit) { t.mainExited(run, e) })
	run.pid = pid
	return err
}

// cloneIntoCgroupRefused: clone3 or CLONE_INTO_CGROUP is not there
// (kernels before 5.7; Docker's default seccomp profile answers clone3
// with ENOSYS), or the cgroup cannot take processes.
func cloneIntoCgroupRefused(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)
}

func (t *Tracker) giveUpCgroups(why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cg != nil {
		t.cg = nil
		t.notice = why
	}
}

// mainExited runs on the reaper's goroutine.
func (t *Tracker) mainExited(run *Run, e reaper.Exit) {
	t.mu.Lock()
	run.exit = &e
	if run.cgroup == "" && (!run.stopping || run.pending > 0) {
		// Nobody asked it to end: its other processes may be anywhere in
		// its session, so a full look, on the surveyor's goroutine. The
		// same when the look before its stop signal has not happened yet:
		// the cheap look needs what that one remembers.
		run.surveyWait = true
		t.requestLocked(request{run: run})
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.lookAgain(run)
}

// lookAgain counts what is left of run after its main process ended, and
// tells its owner: at the first look Exited, then Emptied once nothing is
// left.
func (t *Tracker) lookAgain(run *Run) {
	left := run.countLeft()
	t.mu.Lock()
	if run.emptied || run.surveyWait {
		t.mu.Unlock()
		return
	}
	first := !run.told
	run.told = true
	if left == 0 {
		run.emptied = true
		delete(t.draining, run)
	} else if run.cgroup == "" {
		t.draining[run] = true
	}
	t.mu.Unlock()
	switch {
	case first:
		run.watch.Exited(*run.exit, left)
		if left > 0 {
			if run.cg != nil {
				run.cg.watch(run)
			}
			// It may have emptied between the count and the watch.
			t.lookAgain(run)
		}
	case left == 0:
		run.watch.Emptied()
	}
}

// orphanReaped runs on the reaper's goroutine: one of the draining runs'
// processes may have been the last.
func (t *Tracker) orphanReaped(reaper.Exit) {
	t.mu.Lock()
	if len(t.draining) == 0 {
		t.mu.Unlock()
		return
	}
	runs := make([]*Run, 0, len(t.draining))
	for run := range t.draining {
		runs = append(runs, run)
	}
	t.mu.Unlock()
	for _, run := range runs {
		t.lookAgain(run)
	}
}

// countLeft is the cheap look: the process group, the members remembered
// outside it, or the cgroup. The full survey has filled the memory first.
func (run *Run) countLeft() int {
	if run.cgroup != "" {
		if !populated(run.cgroup) {
			return 0
		}
		return max(1, len(cgroupProcs(run.cgroup)))
	}
	n := 0
	if unix.Kill(-run.pid, 0) == nil {
		n++ // at least one; a survey tells how many
	}
	run.t.mu.Lock()
	escapees := make(map[int]uint64, len(run.escapees))
	for pid, st := range run.escapees {
		escapees[pid] = st
	}
	run.t.mu.Unlock()
	for pid, st := range escapees {
		if p, ok := ReadProcess(pid); ok && p.Start == st && p.Alive() {
			n++
		} else {
			run.t.mu.Lock()
			delete(run.escapees, pid)
			run.t.mu.Unlock()
		}
	}
	return n
}

// Signal sends sig to every process of the run: in cgroup mode each
// process of its cgroup; otherwise, after a look that finds them while
// they are still connected, its process group and every member outside it.
func (run *Run) Signal(sig unix.Signal) {
	t := run.t
	t.mu.Lock()
	run.stopping = true
	if run.cgroup == "" {
		t.requestLocked(request{run: run, sig: sig})
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	signalCgroup(run.cgroup, sig)
	_ = unix.Kill(-run.pid, sig) // its group, should the cgroup be gone
}

// Kill sends SIGKILL to every process of the run.
func (run *Run) Kill() {
	if run.cgroup != "" {
		killCgroup(run.cgroup)
		_ = unix.Kill(-run.pid, unix.SIGKILL)
		return
	}
	run.t.mu.Lock()
	run.stopping = true
	run.t.requestLocked(request{run: run, sig: unix.SIGKILL})
	run.t.mu.Unlock()
}

// Forget removes a service's cgroup once a reload has removed the service;
// it stays if a process is still in it.
func (t *Tracker) Forget(service string) {
	if cg := t.cgroups(); cg != nil {
		cg.remove(service)
	}
}

// Close removes every cgroup tend made that is empty; at tend's exit.
func (t *Tracker) Close() {
	if cg := t.cgroups(); cg != nil {
		cg.removeAll()
	}
}

// A request asks the surveyor to look for a run's processes: after its main
// process exited by itself (sig 0: then tell its owner), or before a
// signal to all of them.
type request struct {
	run *Run
	sig unix.Signal
}

func (t *Tracker) requestLocked(q request) {
	q.run.pending++
	t.requests = append(t.requests, q)
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// survey serves the requests, every request pending at once with one pass
// over /proc: stopping 10,000 services reads /proc a few times, not 10,000.
func (t *Tracker) survey() {
	for range t.wake {
		t.mu.Lock()
		batch := t.requests
		t.requests = nil
		t.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		leaders := make(map[int]bool, len(batch))
		for _, q := range batch {
			leaders[q.run.pid] = true
		}
		snap := takeSnapshot(t.self, leaders, t.r.Owns)
		for _, q := range batch {
			t.serve(q, snap)
		}
	}
}

func (t *Tracker) serve(q request, snap *snapshot) {
	run := q.run
	t.mu.Lock()
	known := make(map[int]uint64, len(run.escapees))
	for pid, st := range run.escapees {
		known[pid] = st
	}
	t.mu.Unlock()
	members := snap.members(run.pid, known)
	outside := map[int]uint64{}
	for _, p := range members {
		if p.Pgrp != run.pid {
			outside[p.Pid] = p.Start
		}
	}
	t.mu.Lock()
	run.escapees = outside
	run.pending--
	t.mu.Unlock()
	// countLeft may prune run.escapees meanwhile: signal from members.
	if q.sig != 0 {
		_ = unix.Kill(-run.pid, q.sig)
		for _, p := range members {
			if p.Pgrp != run.pid {
				signalByPid(p.Pid, p.Start, q.sig)
			}
		}
		return
	}
	t.mu.Lock()
	run.surveyWait = false
	t.mu.Unlock()
	t.lookAgain(run)
}

// signalByPid signals pid only if it is still the process seen (same start
// time), through a pidfd so that the check and the signal name one process.
func signalByPid(pid int, start uint64, sig unix.Signal) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if p, ok := ReadProcess(pid); ok && p.Start == start {
			_ = unix.Kill(pid, sig) // no pidfd (before Linux 5.3): the check narrows the race
		}
		return
	}
	defer unix.Close(fd)
	if p, ok := ReadProcess(pid); !ok || p.Start != start {
		return
	}
	if unix.PidfdSendSignal(fd, sig, nil, 0) != nil {
		_ = unix.Kill(pid, sig)
	}
}
