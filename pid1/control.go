package pid1

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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
		log.Warn(socketRefused(cfg.ControlSocket, err, os.Getuid()))
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

// socketRefused is the warning for a control socket tend could not open:
// what failed, what to set, and what the operator will see (tend ctl,
// the HEALTHCHECK of a non-root image, fails until it is fixed).
func socketRefused(path string, err error, uid int) string {
	msg := fmt.Sprintf("control socket %s: %v; the control API is off, so tend ctl (and a HEALTHCHECK that runs tend ctl health) cannot reach tend", path, err)
	if errors.Is(err, fs.ErrPermission) && uid != 0 {
		msg += fmt.Sprintf("; tend runs as uid %d, which cannot create %s: set control_socket to a path this user can write (control_socket = \"/tmp/tend.sock\", say) and give tend ctl the same path with --socket or TEND_CONFIG", uid, filepath.Dir(path))
	}
	return msg
}
