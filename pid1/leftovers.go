package pid1

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/tree"
)

// killRounds bounds the SIGKILL phase: each round kills every descendant
// found and waits up to killWait for them to be reaped. More than one round
// is only needed when something forks while it is being killed.
const (
	killRounds = 5
	killWait   = time.Second
)

// terminateLeftovers ends every process still under tend: SIGTERM (and
// SIGCONT to the stopped ones, so they can act on it; a running process
// has no use for it, and some count what they get), up to grace for them
// to go, then SIGKILL. It returns once tend has no child left or the rounds run out.
func terminateLeftovers(r *reaper.Reaper, grace time.Duration, log *logrus.Logger) {
	// Scanning /proc costs milliseconds on a busy host; skip it when there
	// is nothing to find. A descendant without a living child of tend above
	// it would have been re-parented to tend, so no child means none at all.
	if r.Reap() {
		return
	}
	gone := r.NoChildren()
	if procs := descendants(os.Getpid()); len(procs) > 0 {
		log.Infof("sending SIGTERM to %d remaining process(es)", len(procs))
		signalAll(procs, unix.SIGTERM)
		var stopped []tree.Process
		for _, p := range procs {
			if p.State == 'T' {
				stopped = append(stopped, p)
			}
		}
		signalAll(stopped, unix.SIGCONT)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-gone:
		return
	case <-timer.C:
	}
	for round := 0; round < killRounds; round++ {
		procs := descendants(os.Getpid())
		if len(procs) > 0 {
			log.Warnf("sending SIGKILL to %d process(es) still running after %s", len(procs), grace)
			signalAll(procs, unix.SIGKILL)
		}
		wait := time.NewTimer(killWait)
		select {
		case <-r.NoChildren():
			wait.Stop()
			return
		case <-wait.C:
		}
	}
	log.Errorf("processes are left after %d rounds of SIGKILL", killRounds)
}

func signalAll(procs []tree.Process, sig unix.Signal) {
	for _, p := range procs {
		_ = unix.Kill(p.Pid, sig) // it may be gone already
	}
}

// descendants lists every process below root, read from /proc. Orphans
// below tend are re-parented to it (PID 1 or subreaper), so this is the set
// of processes tend answers for, and nothing outside it.
// Each comes with its state as the scan read it.
func descendants(root int) []tree.Process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]tree.Process{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := tree.ReadProcess(pid); ok {
			children[p.PPid] = append(children[p.PPid], p)
		}
	}
	var out []tree.Process
	queue := children[root]
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if !dying(p.Pid) {
			out = append(out, p)
		}
		queue = append(queue, children[p.Pid]...)
	}
	return out
}

// dying: pid is a zombie waiting for the reaper, or has a SIGKILL pending
// (a process group's, say, whose members are still on their way out). It
// needs no signal from the leftovers sweep.
func dying(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return true // gone already
	}
	const sigkillBit = 1 << (unix.SIGKILL - 1)
	for _, line := range strings.Split(string(b), "\n") {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch key {
		case "State":
			if strings.HasPrefix(value, "Z") || strings.HasPrefix(value, "X") {
				return true
			}
		case "SigPnd", "ShdPnd":
			if bits, err := strconv.ParseUint(value, 16, 64); err == nil && bits&sigkillBit != 0 {
				return true
			}
		}
	}
	return false
}
