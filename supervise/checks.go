package supervise

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/guard"
	"github.com/tend-init/tend/httpwire"
	"github.com/tend-init/tend/reaper"
)

// A probe runs one check once. It must return by the context's deadline,
// and leave nothing running behind it.
type probe func(ctx context.Context) error

// probeFor builds the probe of a check. exec checks start through the
// launcher like any child: nothing in tend uses os/exec.
// env is the environment the service's run was started with.
func probeFor(c *config.Check, svc *config.Service, env []string, launcher Launcher) probe {
	switch c.Kind {
	case config.CheckTCP:
		return func(ctx context.Context) error {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", c.Target)
			if err != nil {
				return err
			}
			return conn.Close()
		}
	case config.CheckHTTP:
		return func(ctx context.Context) error { return httpGet(ctx, c.Target) }
	case config.CheckFile:
		return func(context.Context) error {
			_, err := os.Stat(c.Target)
			return err
		}
	case config.CheckExec:
		return func(ctx context.Context) error { return runCheckCommand(ctx, c.Exec, svc, env, launcher) }
	}
	return func(context.Context) error { return fmt.Errorf("%s checks are not probed", c.Kind) }
}

// runCheckCommand runs an exec check in its own process group, with the
// service's environment (env: its run's, env files as read at its start),
// directory and user; at the deadline the whole group is killed, and the
// probe returns once the reaper has collected it.
func runCheckCommand(ctx context.Context, argv []string, svc *config.Service, env []string, launcher Launcher) error {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	cmd := reaper.Cmd{
		Args:  argv,
		Env:   env,
		Dir:   svc.WorkingDir,
		Files: []uintptr{devnull.Fd(), devnull.Fd(), devnull.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Credential: credential(svc)},
	}
	exits := make(chan reaper.Exit, 1) // never blocks the reaper
	pid, err := launcher.Start(cmd, func(e reaper.Exit) { exits <- e })
	devnull.Close()
	if err != nil {
		return err
	}
	select {
	case e := <-exits:
		if e.Code() != 0 {
			return fmt.Errorf("%s: %s", argv[0], e)
		}
		return nil
	case <-ctx.Done():
		_ = launcher.Signal(pid, unix.SIGKILL, true)
		<-exits
		return fmt.Errorf("%s: killed after the check's timeout", argv[0])
	}
}

// httpGet asks for url with a minimal HTTP/1.1 GET and wants a 2xx answer.
// A health check needs only the status line; net/http would double the
// size of the binary for it.
func httpGet(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	path := u.RequestURI()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: tend\r\nConnection: close\r\n\r\n", path, u.Host); err != nil {
		return err
	}
	status, err := bufio.NewReader(io.LimitReader(conn, 4096)).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no HTTP answer: %v", err)
	}
	code, err := httpwire.ParseStatusLine(status)
	if err != nil {
		return err
	}
	if code < 200 || code > 299 {
		return fmt.Errorf("HTTP status %s", strings.TrimSpace(httpwire.TrimEOL(status)[9:]))
	}
	return nil
}

// checkKind says which of a service's checks a result belongs to.
type checkKind string

const (
	readyCheck  checkKind = "ready"
	healthCheck checkKind = "health"
)

// check is svc's check of kind for the current run: from the definition
// the run was started with, not the one in force. A reload that changes a
// check restarts the service, except during the shutdown, when nothing
// restarts and the run keeps the checks it had (the new definition's check
// may be absent).
func (svc *service) check(kind checkKind) *config.Check {
	spec := svc.runSpec
	if spec == nil {
		spec = svc.spec
	}
	if kind == readyCheck {
		return spec.Ready
	}
	return spec.Health
}

// slot is where kind's probe is kept: readiness keeps probing after the
// service is ready, beside its health check, and neither may cancel the
// other's.
func (k checkKind) slot() int {
	if k == readyCheck {
		return 0
	}
	return 1
}

// runProbe runs p in its own goroutine with the check's timeout and posts
// the result; the supervisor schedules the next one only after that, so a
// check never overlaps itself.
func (s *Supervisor) runProbe(svc *service, kind checkKind, c *config.Check) {
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	svc.probes[kind.slot()].cancel = cancel
	gen := svc.checkGen
	spec := svc.runSpec
	if spec == nil {
		spec = svc.spec
	}
	p := probeFor(c, spec, svc.runEnv, s.opt.Launcher)
	guard.Go("check of "+svc.spec.Name, func() {
		defer cancel()
		err := p(ctx)
		if err == nil && ctx.Err() != nil {
			err = errors.New("timed out")
		}
		s.inbox.post(func() { s.onCheckResult(svc, kind, gen, err) })
	})
}

// scheduleProbe runs the next probe of kind after delay.
func (s *Supervisor) scheduleProbe(svc *service, kind checkKind, delay time.Duration) {
	gen := svc.checkGen
	svc.probes[kind.slot()].timer = time.AfterFunc(delay, func() {
		s.inbox.post(func() { s.onProbeDue(svc, kind, gen) })
	})
}

// startChecks begins a run's checks: readiness at once (a notify service
// reports by itself) with ready_timeout as its limit, then health once ready.
func (s *Supervisor) startChecks(svc *service) {
	svc.cancelChecks()
	svc.ready, svc.readyOnce, svc.readyFails = svc.spec.Ready == nil, false, 0
	svc.healthy, svc.healthFails = true, 0
	r := svc.spec.Ready
	if r == nil {
		svc.readyOnce = true
		s.startHealth(svc)
		return
	}
	gen := svc.checkGen
	svc.readyTimer = time.AfterFunc(s.cfg.ReadyTimeout, func() { s.inbox.post(func() { s.onReadyDeadline(svc, gen) }) })
	if r.Kind != config.CheckNotify {
		s.runProbe(svc, readyCheck, r)
	}
}

func (s *Supervisor) startHealth(svc *service) {
	if h := svc.spec.Health; h != nil {
		s.scheduleProbe(svc, healthCheck, h.Interval)
	}
}

func (s *Supervisor) onProbeDue(svc *service, kind checkKind, gen int) {
	if !s.current(svc) || gen != svc.checkGen || svc.state != Running {
		return
	}
	s.runProbe(svc, kind, svc.check(kind))
}

func (s *Supervisor) onReadyDeadline(svc *service, gen int) {
	if s.current(svc) && gen == svc.checkGen && svc.state == Running && !svc.readyOnce {
		if s.opt.StartMain != nil && s.now().Sub(s.startedAt) >= s.cfg.ReadyTimeout {
			// The main program's wait ran out at the same moment: that
			// ends tend, and says which services were not ready.
			s.mainNotReady()
			return
		}
		s.failRun(svc, fmt.Sprintf("not ready within ready_timeout %s", s.cfg.ReadyTimeout))
	}
}

// onCheckResult: a probe of kind, begun in check generation gen, ended
// with err.
func (s *Supervisor) onCheckResult(svc *service, kind checkKind, gen int, err error) {
	if !s.current(svc) || gen != svc.checkGen || svc.state != Running {
		return // a result of an earlier run, or of a run being stopped
	}
	svc.probes[kind.slot()].cancel = nil
	log := svc.logger(s.log)
	c := svc.check(kind)
	if err != nil && reaper.OutOfResources(err) {
		// tend could not fork the check: that says nothing of the service.
		log.Warnf("%s check could not run: %v; trying again in %s", kind, err, c.Interval)
		s.scheduleProbe(svc, kind, c.Interval)
		return
	}
	switch kind {
	case readyCheck:
		s.onReadyResult(svc, c, err)
	case healthCheck:
		if err == nil {
			if svc.healthFails > 0 || !svc.healthy {
				log.Infof("health check passes again")
				s.emit(Happening{Kind: KindHealth, Service: svc.name, Healthy: boolPtr(true), Reason: "passes again"})
			}
			svc.healthFails, svc.healthy = 0, true
			s.scheduleProbe(svc, healthCheck, c.Interval)
			return
		}
		svc.healthFails++
		log.Warnf("health check failed (%d of %d): %v", svc.healthFails, c.Threshold, err)
		if svc.healthFails < c.Threshold {
			s.scheduleProbe(svc, healthCheck, c.Interval)
			return
		}
		wasHealthy := svc.healthy
		svc.healthy = false
		if wasHealthy {
			s.emit(Happening{Kind: KindHealth, Service: svc.name, Healthy: boolPtr(false), Reason: err.Error()})
		}
		why := fmt.Sprintf("health check failed %d times in a row", svc.healthFails)
		switch c.OnFailure {
		case config.FailIgnore:
			// Reported (status, events, metrics), never acted on; the
			// next pass says so.
			if wasHealthy {
				log.Warnf("%s: unhealthy (on_failure = ignore: it keeps running)", why)
			}
			s.scheduleProbe(svc, healthCheck, c.Interval)
		case config.FailShutdown:
			log.Errorf("%s: shutting tend down (on_failure = shutdown)", why)
			s.lifeEvent(CheckShutdown, Facts{})
		default:
			s.failRun(svc, why)
		}
	}
}

// onReadyResult: until the service is first ready, a failure only means
// "not yet" (ready_timeout is the limit); once ready, the check keeps
// probing every period, and threshold failures in a row make it not ready
// again, as Kubernetes' readiness probe does: reported, and dependants not
// yet started wait again, but nothing is stopped.
func (s *Supervisor) onReadyResult(svc *service, c *config.Check, err error) {
	log := svc.logger(s.log)
	switch {
	case !svc.readyOnce && err != nil:
		log.Debugf("not ready yet: %v", err)
		s.scheduleProbe(svc, readyCheck, c.Interval)
		return
	case err == nil:
		svc.readyFails = 0
		s.becomeReady(svc, string(c.Kind)+" check passed")
	default:
		svc.readyFails++
		log.Debugf("readiness check failed (%d of %d): %v", svc.readyFails, c.Threshold, err)
		if svc.readyFails >= c.Threshold && svc.ready {
			svc.ready = false
			why := fmt.Sprintf("readiness check failed %d %s in a row: %v", svc.readyFails, plural(svc.readyFails, "time", "times"), err)
			log.Warnf("not ready: %s", why)
			s.emit(Happening{Kind: KindReady, Service: svc.name, Ready: boolPtr(false), Reason: why})
			s.deps.touch(svc)
		}
	}
	if c.Period > 0 {
		s.scheduleProbe(svc, readyCheck, c.Period)
	}
}

func (s *Supervisor) becomeReady(svc *service, why string) {
	if svc.ready {
		return
	}
	svc.ready = true
	if svc.readyTimer != nil {
		svc.readyTimer.Stop()
		svc.readyTimer = nil
	}
	if svc.readyOnce {
		why += " again"
	}
	svc.logger(s.log).Infof("ready: %s", why)
	s.emit(Happening{Kind: KindReady, Service: svc.name, Ready: boolPtr(true), Reason: why})
	s.deps.touch(svc)
	if !svc.readyOnce {
		svc.readyOnce = true
		s.startHealth(svc)
	}
}

// failRun stops a run that failed a check: its end counts as unclean, and
// the restart policy decides what comes next.
func (s *Supervisor) failRun(svc *service, why string) {
	svc.logger(s.log).Errorf("%s: stopping it", why)
	s.event(svc, CheckFailed, why)
}
