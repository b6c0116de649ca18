package pid1

import (
	"context"

	"github.com/sirupsen/logrus"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/control"
	"github.com/tend-init/tend/supervise"
)

// startControl opens the control socket unless the config disables it. A
// socket that cannot be opened is logged and tend carries on without it:
// the services matter more than the operator's window onto them. power is
// `tend ctl poweroff|reboot`, nil unless tend is a VM's init.
func startControl(cfg *config.Config, sup *supervise.Supervisor, power control.Power, log *logrus.Logger) (stop func()) {
	if cfg.ControlSocket == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := control.Serve(ctx, cfg.ControlSocket, control.NewHandler(sup, power, log), log); err != nil {
		log.Warnf("control socket %s: %v; the control API is off", cfg.ControlSocket, err)
	} else {
		log.Infof("control API on %s", cfg.ControlSocket)
	}
	return cancel
}
