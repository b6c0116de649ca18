package pid1

import (
	"errors"
	"os"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/cli"
	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
)

// runWrapper is tini's loop: start the main program, forward every signal
// to it, and return its exit status once it ends. In a VM (v not nil) the
// signals that end the machine stop the program first: SIGTERM, then
// SIGKILL to its group after vmStopTimeout.
func runWrapper(o cli.Options, r *reaper.Reaper, sigs <-chan os.Signal, log *logrus.Logger, v *vm) int {
	pid, exited, err := startMain(r, o.Command, v)
	if err != nil {
		log.Error(err)
		return reaper.ExitCode(err)
	}
	log.Debugf("started %s as process %d", o.Command[0], pid)
	if v == nil && toMain != nil {
		caught := signals.Caught(signals.Queued(signals.Urgent(o.Rewrite)))
		c := signals.NewCatcher(caught)
		catch := func() { c.Run(func(sig unix.Signal) { forward(o, r, pid, sig, signals.Wrapper, log) }) }
		// The direct loop cannot log; with -vv every forwarded and
		// absorbed signal is logged, so the logging path is taken.
		if !log.IsLevelEnabled(logrus.DebugLevel) {
			if fd, err := r.PidFD(pid); err == nil {
				// Closed once the program has ended; a signal the loop
				// sends after that, before Stop reaches it, fails with
				// EBADF at worst (tend opens no other pidfd).
				defer unix.Close(fd)
				route := signals.ForwardingFor(signals.Wrapper, o.Rewrite, caught)
				route.PidFD = fd
				if o.KillGroup {
					route.Group = pid
				}
				catch = func() { c.RunDirect(&route) }
			}
		}
		return catchOnMainThread(c, catch, func() int { return wrapperLoop(o, r, pid, exited, sigs, log, v) })
	}
	return wrapperLoop(o, r, pid, exited, sigs, log, v)
}

// catchOnMainThread is wrapper mode's fast path (signals.Catcher): the
// main thread takes signals off the kernel's queue and forwards them
// itself (catch), while loop, here, forwards the ones that came through
// os/signal and returns the main program's exit status. The loop's end,
// or its panic, stops the catcher.
func catchOnMainThread(c *signals.Catcher, catch func(), loop func() int) int {
	defer c.Stop()
	toMain <- catch
	return loop()
}

// forward delivers sig, received from outside, to the main program pid as
// wrapper mode does (the rewrite table, -g), or absorbs it.
func forward(o cli.Options, r *reaper.Reaper, pid int, sig unix.Signal, mode signals.Mode, log *logrus.Logger) {
	action, to := signals.Route(mode, o.Rewrite, sig)
	if action != signals.Forward {
		// Never a word about SIGPIPE: tend raises it on itself when its
		// own output is gone, and a log line about it would be the next
		// write to fail (a self-feeding loop).
		if sig != unix.SIGPIPE {
			log.Debugf("absorbed %s", signals.Name(sig))
		}
		return
	}
	if err := r.Signal(pid, to, o.KillGroup); err != nil {
		log.Debugf("forwarding %s to %d: %v", signals.Name(to), pid, err)
	}
}

// wrapperLoop waits for the main program pid to end, forwarding the
// signals that come through os/signal (sigs) meanwhile.
func wrapperLoop(o cli.Options, r *reaper.Reaper, pid int, exited <-chan reaper.Exit, sigs <-chan os.Signal, log *logrus.Logger, v *vm) int {
	mode := signals.Wrapper
	power := make(chan bool, 4) // true for the first request
	if v != nil {
		mode |= signals.VM
		v.setDeliver(func(_ signals.Action, first bool) {
			select {
			case power <- first:
			default:
			}
		})
	}
	var kill <-chan time.Time
	for {
		select {
		case s := <-sigs:
			action, sig := signals.Route(mode, o.Rewrite, s.(syscall.Signal))
			switch action {
			case signals.PowerOff, signals.Reboot:
				v.request(action, "received "+signals.Name(sig))
			default:
				forward(o, r, pid, s.(syscall.Signal), mode, log)
			}
		case first := <-power:
			if first {
				_ = r.Signal(pid, unix.SIGTERM, o.KillGroup)
				kill = time.After(vmStopTimeout)
				continue
			}
			_ = r.Signal(pid, unix.SIGKILL, true)
		case <-kill:
			log.Warnf("main program still running %s after SIGTERM: sending SIGKILL to its process group", vmStopTimeout)
			_ = r.Signal(pid, unix.SIGKILL, true)
		case e := <-exited:
			log.Debugf("main program %d ended: %s", pid, e)
			return RemapExit(e.Code(), o.ExitRemap)
		case err := <-guard.Panics():
			log.Errorf("%v; shutting down", err)
			return 1
		}
	}
}

// vmStopTimeout is how long a VM's main program (wrapper mode) gets between
// SIGTERM and SIGKILL when the machine is to power off: the default
// shutdown_timeout of supervisor mode.
const vmStopTimeout = 9 * time.Second

// startMain runs the main program in its own process group, handed the
// terminal's foreground when stdin is a terminal so that job control in an
// interactive shell works, as tini does. A VM's init has no controlling
// terminal to share: there the program gets a session of its own with the
// console as its controlling terminal, as sysvinit and busybox init give
// their console shell.
func startMain(r *reaper.Reaper, argv []string, v *vm) (int, <-chan reaper.Exit, error) {
	cmd := reaper.Cmd{Args: argv, Env: os.Environ(), Files: []uintptr{0, 1, 2}}
	if isTerminal(0) {
		cmd.Sys = &syscall.SysProcAttr{Foreground: true, Ctty: 0}
		console := v != nil && v.kernel
		if console {
			cmd.Sys = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		}
		pid, exited, err := r.Start(cmd)
		// A terminal that is not tend's controlling terminal refuses
		// TIOCSPGRP; tini ignores that too and carries on without it.
		// TIOCSCTTY refuses a terminal that another session holds.
		if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.ENXIO) && !(console && errors.Is(err, unix.EPERM)) {
			return pid, exited, err
		}
	}
	cmd.Sys = &syscall.SysProcAttr{Setpgid: true}
	return r.Start(cmd)
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// RemapExit applies -e: the listed codes are reported as 0.
func RemapExit(code int, remap map[int]bool) int {
	if remap[code] {
		return 0
	}
	return code
}
