package pid1

import (
	"errors"
	"os"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/cli"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/wrapper"
)

// runWrapper starts the main program and hands it to wrapper mode, which
// forwards signals to it until it ends and returns its exit status.
func runWrapper(o cli.Options, r *reaper.Reaper, sigs <-chan os.Signal, log *logrus.Logger, v *vm) int {
	exited := make(chan reaper.Exit, 1) // never blocks the reaper
	pid, err := startMain(r, o.Command, v, func(e reaper.Exit) { exited <- e })
	if err != nil {
		log.Error(err)
		return reaper.ExitCode(err)
	}
	log.Debugf("started %s as process %d", o.Command[0], pid)
	w := wrapper.Options{
		Pid: pid, Exited: exited, Reaper: r, Signals: sigs,
		Rewrite: o.Rewrite, KillGroup: o.KillGroup, ExitRemap: o.ExitRemap, Log: log,
	}
	switch {
	case v != nil:
		w.Machine = v
	case toMain != nil:
		w.MainThread = func(f func()) { toMain <- f }
	}
	return wrapper.Run(w)
}

// startMain runs the main program in its own process group, handed the
// terminal's foreground when stdin is a terminal so that job control in an
// interactive shell works, as tini does. A VM's init has no controlling
// terminal to share: there the program gets a session of its own with the
// console as its controlling terminal, as sysvinit and busybox init give
// their console shell. onExit is as for reaper.Start.
func startMain(r *reaper.Reaper, argv []string, v *vm, onExit func(reaper.Exit)) (int, error) {
	cmd := reaper.Cmd{Args: argv, Env: os.Environ(), Files: []uintptr{0, 1, 2}}
	if isTerminal(0) {
		cmd.Sys = &syscall.SysProcAttr{Foreground: true, Ctty: 0}
		console := v != nil && v.kernel
		if console {
			cmd.Sys = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		}
		pid, err := r.Start(cmd, onExit)
		// A terminal that is not tend's controlling terminal refuses
		// TIOCSPGRP; tini ignores that too and carries on without it.
		// TIOCSCTTY refuses a terminal that another session holds.
		if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.ENXIO) && !(console && errors.Is(err, unix.EPERM)) {
			return pid, err
		}
	}
	cmd.Sys = &syscall.SysProcAttr{Setpgid: true}
	return r.Start(cmd, onExit)
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
