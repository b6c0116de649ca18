package pid1

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/signals"
	"github.com/tend-init/tend/supervise"
)

// ordersBuffer holds decided signals until the supervisor's loop takes
// them; the queue in front keeps the ones tend acts on first.
const ordersBuffer = 64

// routeOrders decides, once and at the edge, what each signal received in
// supervisor mode means (signals.Route: the rewrite table, then the mode),
// and hands the supervisor an order: shut down, reload, or forward. In a
// VM, a signal that ends the machine is a power-off or reboot request: the
// VM records which, and the supervisor is ordered to shut down (its main
// program is sent SIGTERM, or SIGINT for a reboot, as sysvinit does).
func routeOrders(in <-chan os.Signal, rw signals.Rewrite, v *vm) <-chan supervise.Order {
	out := make(chan supervise.Order, ordersBuffer)
	mode := signals.Supervisor
	if v != nil {
		mode |= signals.VM
		v.SetDeliver(func(a signals.Action, _ bool) {
			o := supervise.Order{Action: signals.Shutdown, Signal: unix.SIGTERM, Why: v.verb(a) + " requested"}
			if a == signals.Reboot {
				o.Signal = unix.SIGINT
			}
			// Requests come from the router and the control socket; the
			// send must not hold either up.
			guard.Go("power order", func() { out <- o })
		})
	}
	guard.Go("signal router", func() {
		for s := range in {
			action, sig := signals.Route(mode, rw, s.(unix.Signal))
			switch action {
			case signals.Absorb:
			case signals.PowerOff, signals.Reboot:
				v.Request(action, "received "+signals.Name(sig))
			default:
				out <- supervise.Order{Action: action, Signal: sig}
			}
		}
	})
	return out
}
