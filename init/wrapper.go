package pid1

import (
	"errors"
	"os"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/cli"
	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
)

// runWrapper is tini's loop: start the main program, forward every signal
// to it, and return its exit status once it ends.
func runWrapper(o cli.Options, r *reaper.Reaper, sigs <-chan os.Signal, log *logrus.Logger) int {
	pid, exited, err := startMain(r, o.Command)
	if err != nil {
		log.Error(err)
		return exitCodeOf(err)
	}
	log.Debugf("started %s as process %d", o.Command[0], pid)
	for {
		select {
		case s := <-sigs:
			action, sig := signals.Route(signals.Wrapper, o.Rewrite, s.(syscall.Signal))
			if action != signals.Forward {
				log.Debugf("absorbed %s", signals.Name(s.(syscall.Signal)))
				continue
			}
			if err := r.Signal(pid, sig, o.KillGroup); err != nil {
				log.Debugf("forwarding %s to %d: %v", signals.Name(sig), pid, err)
			}
		case e := <-exited:
			log.Debugf("main program %d ended: %s", pid, e)
			return RemapExit(e.Code(), o.ExitRemap)
		case err := <-guard.Panics():
			log.Errorf("%v; shutting down", err)
			return 1
		}
	}
}

// startMain runs the main program in its own process group, handed the
// terminal's foreground when stdin is a terminal so that job control in an
// interactive shell works, as tini does.
func startMain(r *reaper.Reaper, argv []string) (int, <-chan reaper.Exit, error) {
	cmd := reaper.Cmd{Args: argv, Env: os.Environ(), Files: []uintptr{0, 1, 2}}
	if isTerminal(0) {
		cmd.Sys = &syscall.SysProcAttr{Foreground: true, Ctty: 0}
		pid, exited, err := r.Start(cmd)
		// A terminal that is not tend's controlling terminal refuses
		// TIOCSPGRP; tini ignores that too and carries on without it.
		if !errors.Is(err, unix.ENOTTY) && !errors.Is(err, unix.ENXIO) {
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

func exitCodeOf(err error) int {
	var se *reaper.StartError
	if errors.As(err, &se) {
		return se.Code
	}
	return 1
}

// RemapExit applies -e: the listed codes are reported as 0.
func RemapExit(code int, remap map[int]bool) int {
	if remap[code] {
		return 0
	}
	return code
}
