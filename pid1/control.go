package pid1

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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
	for _, l := range tcpListeners(cfg) {
		if err := control.ServeTCP(ctx, l.key, l.addr, l.slots, h.Public(l.health, l.metrics), log); err != nil {
			log.Warn(l.refused(err))
		} else {
			log.Infof("%s: %s", l.key, l.serves())
		}
	}
	if cfg.ControlSocket == "" {
		return cancel
	}
	// A default socket in /tmp goes in a directory of tend's own user,
	// made here and refused if another user made it.
	if p := cfg.DefaultSocket; p != nil && p.Dir != "" {
		if err := config.PrivateDir(p.Dir, p.UID, true); err != nil {
			log.Warn(socketRefused(cfg.ControlSocket, p, err, os.Geteuid()))
			return cancel
		}
	}
	answered, err := control.Serve(ctx, cfg.ControlSocket, h, log)
	if err != nil {
		log.Warn(socketRefused(cfg.ControlSocket, cfg.DefaultSocket, err, os.Geteuid()))
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

// tcpListener is one of the TCP listeners the config asks for.
type tcpListener struct {
	key             string // the config key(s) that name it, for the log
	addr            string
	health, metrics bool // serves /livez and /readyz, /metrics
	slots           int
}

// tcpListeners are the listeners of health_listen and metrics_listen: one
// each, or one for both when they name the same address.
func tcpListeners(cfg *config.Config) []tcpListener {
	if cfg.SharedListener() {
		return []tcpListener{{key: "health_listen and metrics_listen", addr: cfg.HealthListen, health: true, metrics: true, slots: control.HealthSlots}}
	}
	var ls []tcpListener
	if cfg.HealthListen != "" {
		ls = append(ls, tcpListener{key: "health_listen", addr: cfg.HealthListen, health: true, slots: control.HealthSlots})
	}
	if cfg.MetricsListen != "" {
		ls = append(ls, tcpListener{key: "metrics_listen", addr: cfg.MetricsListen, metrics: true, slots: control.MetricsSlots})
	}
	return ls
}

// serves is what the listener answers, for the log.
func (l tcpListener) serves() string {
	var urls []string
	if l.health {
		urls = append(urls, "http://"+l.addr+"/livez", "http://"+l.addr+"/readyz")
	}
	if l.metrics {
		urls = append(urls, "http://"+l.addr+"/metrics")
	}
	return "serving " + strings.Join(urls, ", ")
}

// refused is the warning for a listener that cannot be had. Like the
// control socket's, it is not fatal: tend carries on without it, and says
// what is lost and what to change.
func (l tcpListener) refused(err error) string {
	var lost []string
	if l.health {
		lost = append(lost, "/livez and /readyz are not served, so an HTTP probe of them (a kubelet's httpGet, a load balancer's health check) fails and may restart this container")
	}
	if l.metrics {
		lost = append(lost, "the metrics are on the control socket only")
	}
	fix := "set " + l.key + " to an address of this machine that is free"
	if errors.Is(err, syscall.EADDRINUSE) {
		fix = "another program (or another tend) has the port: stop it, or set " + l.key + " to another port"
	} else if errors.Is(err, syscall.EACCES) {
		fix = "ports below 1024 need root or CAP_NET_BIND_SERVICE: set " + l.key + " to a port of 1024 or more"
	}
	return fmt.Sprintf("%s %s: %v; %s; %s", l.key, l.addr, err, strings.Join(lost, ", and "), fix)
}

// answerDrain bounds the wait for answers in flight at exit.
const answerDrain = time.Second

// socketRefused is the warning for a control socket tend could not open:
// what failed, how the path was chosen when it is the default (place),
// what to set, and what the operator will see (tend ctl, the HEALTHCHECK
// of a non-root image, fails until it is fixed).
func socketRefused(path string, place *config.SocketPlace, err error, euid int) string {
	msg := fmt.Sprintf("control socket %s: %v; the control API is off, so tend ctl (and a HEALTHCHECK that runs tend ctl health) cannot reach tend", path, err)
	if place != nil {
		msg += "; the path is " + place.Choice()
	}
	switch {
	case place != nil && euid != 0:
		msg += fmt.Sprintf("; set control_socket to a path uid %d can write (on a writable volume if the root file system is read-only) and give tend ctl the same path with --socket or TEND_CONFIG", euid)
	case errors.Is(err, fs.ErrPermission) && euid != 0:
		msg += fmt.Sprintf("; tend runs as uid %d, which cannot create %s: set control_socket to a path this user can write (or leave it out: the default for a user other than root is $XDG_RUNTIME_DIR/tend.sock or /tmp/tend-%d/tend.sock) and give tend ctl the same path with --socket or TEND_CONFIG", euid, filepath.Dir(path), euid)
	}
	return msg
}
