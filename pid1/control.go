package pid1

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tend-init/tend/api"
	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/control"
	"github.com/tend-init/tend/supervise"
)

// startControl serves the control API (package api) on the control socket
// unless the config disables it, and its metrics on the metrics listener
// if the config asks for one. A socket that cannot be opened is logged and
// tend carries on without it: the services matter more than the operator's
// window onto them. power is `tend ctl poweroff|reboot`, nil unless tend is
// a VM's init.
func startControl(cfg *config.Config, sup *supervise.Supervisor, power api.Power, log *logrus.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	h := api.NewHandler(sup, power, log)
	if cfg.MetricsListen != "" {
		if err := control.ServeMetrics(ctx, cfg.MetricsListen, h.Metrics, log); err != nil {
			log.Warnf("metrics_listen %s: %v; metrics are on the control socket only", cfg.MetricsListen, err)
		} else {
			log.Infof("metrics on http://%s/metrics", cfg.MetricsListen)
		}
	}
	if cfg.ControlSocket == "" {
		return cancel
	}
	answered, err := control.Serve(ctx, cfg.ControlSocket, h, log)
	if err != nil {
		log.Warnf("control socket %s: %v; the control API is off", cfg.ControlSocket, err)
		return cancel
	}
	log.Infof("control API on %s", cfg.ControlSocket)
	return func() {
		cancel()
		// Answer what was asked before tend goes: a shutdown request, or
		// the last stop, is answered like any other.
		if !answered(answerDrain) {
			log.Warn("control socket: a request was still being answered when tend exited")
		}
	}
}

// answerDrain bounds the wait for answers in flight at exit.
const answerDrain = time.Second
