// Package wrapper is tend's wrapper mode, tini's job: one main program,
// every signal forwarded to it, its exit status returned once it ends.
// Supervisor mode (package supervise) is the other mode; package pid1
// starts the main program and picks the mode.
//
// A signal reaches the program by one of three paths, fastest first, and
// each is decided once by the same route (signals.Route: the rewrite
// table, then the mode):
//   - the direct loop (signals.Catcher.RunDirect): on the main thread,
//     with the route worked out beforehand for every signal it catches;
//   - the catcher (signals.Catcher.Run): on the main thread, routing each
//     signal as it comes, when -vv wants every forward logged or no pidfd
//     could be had;
//   - os/signal (Options.Signals): for what the main thread does not
//     catch (signals that came while it was busy, the queued and the fault
//     signals), and everything in a VM.
package wrapper

import (
	"os"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
)

// Options is what wrapper mode needs: the main program, already started,
// and how to treat the signals that come in.
type Options struct {
	Pid     int                // the main program
	Exited  <-chan reaper.Exit // receives its exit once
	Reaper  *reaper.Reaper     // signals it
	Signals <-chan os.Signal   // tend's os/signal subscription
	Rewrite signals.Rewrite    // -r
	// KillGroup (-g) sends every forwarded signal to the program's process
	// group.
	KillGroup bool
	ExitRemap reaper.ExitRemap // -e
	Log       *logrus.Logger
	// Machine is set when tend is a VM's init: the signals that end the
	// machine stop the program (SIGTERM, then SIGKILL to its group after
	// stopTimeout) and then power off or reboot. Nil otherwise.
	Machine Machine
	// MainThread runs a function on the process's main thread, for the
	// catcher; nil when that is not possible (a VM's init), and then
	// every signal comes through Signals.
	MainThread func(func())
}

// Machine is a VM's power control (package pid1's vm).
type Machine interface {
	// Request asks for a power-off or reboot after the program has
	// stopped, for the log's why.
	Request(a signals.Action, why string)
	// SetDeliver names what hears of each request: the first decides
	// which, a later one hurries the stop along.
	SetDeliver(func(a signals.Action, first bool))
}

// stopTimeout is how long a VM's main program gets between SIGTERM and
// SIGKILL when the machine is to power off: what supervisor mode gives
// its shutdown by default.
const stopTimeout = config.DefaultShutdownTimeout

// Run forwards signals to the main program until it ends, and returns its
// exit status (after -e), or 1 when a panic elsewhere in tend ends it.
func Run(o Options) int {
	w := &wrapper{o: o, mode: signals.Wrapper}
	if o.Machine != nil {
		w.mode |= signals.VM
	}
	if o.MainThread == nil || w.mode&signals.VM != 0 {
		return w.loop()
	}
	caught := signals.Caught(signals.Queued(signals.Urgent(o.Rewrite)))
	c := signals.NewCatcher(caught)
	catch := func() { c.Run(func(sig unix.Signal) { w.deliver(sig) }) }
	// The direct loop cannot log; with -vv every forwarded and absorbed
	// signal is logged, so the catcher routes them here.
	if !o.Log.IsLevelEnabled(logrus.DebugLevel) {
		if fd, err := o.Reaper.PidFD(o.Pid); err == nil {
			// Closed once the program has ended; a signal the loop sends
			// after that, before Stop reaches it, fails with EBADF at
			// worst (tend opens no other pidfd).
			defer unix.Close(fd)
			route := signals.ForwardingFor(w.mode, o.Rewrite, caught)
			route.PidFD = fd
			if o.KillGroup {
				route.Group = o.Pid
			}
			catch = func() { c.RunDirect(&route) }
		}
	}
	// The loop's end, or its panic, stops the catcher.
	defer c.Stop()
	o.MainThread(catch)
	return w.loop()
}

type wrapper struct {
	o    Options
	mode signals.Mode
}

// deliver routes sig, received from outside, and forwards it or absorbs
// it (outside a VM nothing else can come of a signal).
func (w *wrapper) deliver(sig unix.Signal) {
	action, to := signals.Route(w.mode, w.o.Rewrite, sig)
	w.carryOut(sig, action, to)
}

// carryOut does what the route said of sig: forward it as to, or absorb it.
func (w *wrapper) carryOut(sig unix.Signal, action signals.Action, to unix.Signal) {
	if action != signals.Forward {
		// Never a word about SIGPIPE: tend raises it on itself when its
		// own output is gone, and a log line about it would be the next
		// write to fail (a self-feeding loop).
		if sig != unix.SIGPIPE {
			w.o.Log.Debugf("absorbed %s", signals.Name(sig))
		}
		return
	}
	if err := w.o.Reaper.Signal(w.o.Pid, to, w.o.KillGroup); err != nil {
		w.o.Log.Debugf("forwarding %s to %d: %v", signals.Name(to), w.o.Pid, err)
	}
}

// loop waits for the main program to end, forwarding the signals that
// come through os/signal meanwhile.
func (w *wrapper) loop() int {
	o := w.o
	power := make(chan bool, 4) // true for the first request
	if o.Machine != nil {
		o.Machine.SetDeliver(func(_ signals.Action, first bool) {
			select {
			case power <- first:
			default:
			}
		})
	}
	var kill <-chan time.Time
	for {
		select {
		case s := <-o.Signals:
			sig := s.(unix.Signal)
			action, to := signals.Route(w.mode, o.Rewrite, sig)
			switch action {
			case signals.PowerOff, signals.Reboot:
				o.Machine.Request(action, "received "+signals.Name(to))
			default:
				w.carryOut(sig, action, to)
			}
		case first := <-power:
			if first {
				_ = o.Reaper.Signal(o.Pid, unix.SIGTERM, o.KillGroup)
				kill = time.After(stopTimeout)
				continue
			}
			_ = o.Reaper.Signal(o.Pid, unix.SIGKILL, true)
		case <-kill:
			o.Log.Warnf("main program still running %s after SIGTERM: sending SIGKILL to its process group", stopTimeout)
			_ = o.Reaper.Signal(o.Pid, unix.SIGKILL, true)
		case e := <-o.Exited:
			o.Log.Debugf("main program %d ended: %s", o.Pid, e)
			return o.ExitRemap.Apply(e.Code())
		case err := <-guard.Panics():
			o.Log.Errorf("%v; shutting down", err)
			return 1
		}
	}
}
