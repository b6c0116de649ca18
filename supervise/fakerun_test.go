package supervise

import (
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/tree"
)

// singleRun is a run that is nothing but its main process, for the fakes
// whose services are one process each.
type singleRun struct {
	pid    int
	signal func(pid int, sig unix.Signal, group bool) error
}

func (r *singleRun) Pid() int                           { return r.pid }
func (r *singleRun) Signal(sig unix.Signal)             { _ = r.signal(r.pid, sig, true) }
func (r *singleRun) Kill()                              { _ = r.signal(r.pid, unix.SIGKILL, true) }
func (r *singleRun) Tracking() (tree.Mechanism, string) { return tree.Session, "" }

// startSingle starts c with start and reports its exit to w as the end of
// the whole run.
func startSingle(start func(reaper.Cmd, func(reaper.Exit)) (int, error), signal func(int, unix.Signal, bool) error, c reaper.Cmd, w tree.Watch) (ServiceRun, error) {
	pid, err := start(c, func(e reaper.Exit) { w.Exited(e, 0) })
	if err != nil {
		return nil, err
	}
	return &singleRun{pid: pid, signal: signal}, nil
}

func (f *fakeLauncher) StartService(_ string, c reaper.Cmd, w tree.Watch) (ServiceRun, error) {
	return startSingle(f.Start, f.Signal, c, w)
}

func (f *fakeLauncher) ForgetService(string) {}
