package supervise

import (
	"io"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/reaper"
	"github.com/tend-init/tend/signals"
)

// TestProbes: what GET /livez and /readyz report (Live, Ready), beside
// GET /v1/health (Health), in each situation that tells them apart.
func TestProbes(t *testing.T) {
	notReadyCheck := &config.Check{Kind: config.CheckFile, Target: "/nonexistent/tend-probe-test", Interval: time.Second, Timeout: time.Second}
	svc := func(name string, change func(*config.Service)) *config.Service {
		s := testService(name)
		if change != nil {
			change(s)
		}
		return s
	}
	exitCode := func(code int) unix.WaitStatus { return unix.WaitStatus(code << 8) }
	cases := []struct {
		name       string
		services   []*config.Service
		main       bool // a main program (after --)
		ignoreTerm bool // a shutdown lasts until stop_timeout
		do         func(t *testing.T, h *harness)
		live       []string // reasons; nil = live
		ready      []string // reasons; nil = ready
		health     []string // GET /v1/health's reasons; nil = healthy
	}{
		{name: "every service runs", services: []*config.Service{svc("db", nil), svc("web", nil)}},
		{name: "a readiness check has not passed",
			services: []*config.Service{svc("db", func(s *config.Service) { s.Ready = notReadyCheck })},
			ready:    []string{"db is not ready"}, health: []string{"db is not ready"}},
		{name: "the main program waits for the services",
			services: []*config.Service{svc("db", func(s *config.Service) { s.Ready = notReadyCheck })}, main: true,
			ready:  []string{"db is not ready", "the main program has not started: it waits for every service to be ready"},
			health: []string{"db is not ready"}},
		{name: "the main program runs", services: []*config.Service{svc("db", nil)}, main: true},
		{name: "a service waits for its dependencies",
			services: []*config.Service{svc("db", func(s *config.Service) { s.Ready = notReadyCheck }), svc("web", func(s *config.Service) { s.DependsOn = []string{"db"} })},
			ready:    []string{"db is not ready", "web is idle, waiting for db to be ready"},
			health:   []string{"db is not ready", "web is idle, waiting for db to be ready"}},
		{name: "an operator stopped a service: it is meant to be down",
			services: []*config.Service{svc("db", nil), svc("web", nil)},
			do: func(t *testing.T, h *harness) {
				if err := h.sup.Operate("web", CmdStop); err != nil {
					t.Fatal(err)
				}
			},
			health: []string{"web is stopped, last killed by SIGTERM"}},
		{name: "a oneshot still runs",
			services: []*config.Service{svc("migrate", func(s *config.Service) { s.Oneshot, s.Restart = true, config.PolicyNever })},
			ready:    []string{"migrate is not ready"}, health: []string{"migrate is not ready"}},
		{name: "a oneshot succeeded",
			services: []*config.Service{svc("migrate", func(s *config.Service) { s.Oneshot, s.Restart = true, config.PolicyNever }), svc("web", nil)},
			do:       func(t *testing.T, h *harness) { h.fake.exit(h.pid("migrate"), exitCode(0)) }},
		{name: "a oneshot failed",
			services: []*config.Service{svc("migrate", func(s *config.Service) { s.Oneshot, s.Restart = true, config.PolicyNever }), svc("web", nil)},
			do:       func(t *testing.T, h *harness) { h.fake.exit(h.pid("migrate"), exitCode(2)) },
			ready:    []string{"migrate is stopped, last exit code 2"}, health: []string{"migrate is stopped, last exit code 2"}},
		{name: "a service in crash-loop-backoff",
			services: []*config.Service{svc("web", func(s *config.Service) { s.CrashLoop.MaxRestarts = 1 })},
			do:       func(t *testing.T, h *harness) { h.fake.exit(h.pid("web"), exitCode(1)) },
			ready:    []string{"web is crash-loop-backoff, last exit code 1"}, health: []string{"web is crash-loop-backoff, last exit code 1"}},
		{name: "a service that is not essential gave up",
			services: []*config.Service{svc("web", func(s *config.Service) { s.MaxRestarts = 0 }), svc("db", nil)},
			do:       func(t *testing.T, h *harness) { h.fake.exit(h.pid("web"), exitCode(1)) },
			ready:    []string{"web is max-restarts-reached, last exit code 1"}, health: []string{"web is max-restarts-reached, last exit code 1"}},
		{name: "an essential service gave up", ignoreTerm: true,
			services: []*config.Service{svc("db", func(s *config.Service) { s.MaxRestarts, s.Essential = 0, true }), svc("web", nil)},
			do:       func(t *testing.T, h *harness) { h.fake.exit(h.pid("db"), exitCode(3)) },
			live:     []string{"essential service db is max-restarts-reached (exit code 3), so tend is shutting down"},
			ready:    []string{"tend is shutting down (essential service gave up)"},
			health:   []string{"db is max-restarts-reached, last exit code 3", "web is stopping"}},
		{name: "an essential service that cannot start", ignoreTerm: true,
			services: []*config.Service{
				svc("dep", func(s *config.Service) { s.MaxRestarts = 0; s.Ready = notReadyCheck }),
				svc("db", func(s *config.Service) { s.Essential = true; s.DependsOn = []string{"dep"} }),
				svc("web", nil)},
			do:     func(t *testing.T, h *harness) { h.fake.exit(h.pid("dep"), exitCode(1)) },
			live:   []string{"essential service db was not started, so tend is shutting down"},
			ready:  []string{"tend is shutting down (essential service gave up)"},
			health: []string{"dep is max-restarts-reached, last exit code 1", "db is not started: dependency dep is max-restarts-reached (exit code 1)", "web is stopping"}},
		{name: "a shutdown was ordered", ignoreTerm: true,
			services: []*config.Service{svc("web", nil)},
			do: func(t *testing.T, h *harness) {
				h.sigs <- Order{Action: signals.Shutdown, Signal: unix.SIGTERM}
			},
			ready: []string{"tend is shutting down (signal)"}, health: []string{"web is stopping"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig(tc.services...)
				log := logrus.New()
				log.Out = io.Discard
				h := &harness{fake: newFake(), sigs: make(chan Order, 1), done: make(chan int, 1)}
				h.fake.ignoreTerm = tc.ignoreTerm
				opt := Options{Launcher: h.fake, Log: log, Sink: NewSink(io.Discard, io.Discard, "text")}
				if tc.main {
					opt.StartMain = func(onExit func(reaper.Exit)) (int, error) { return h.fake.Start(reaper.Cmd{}, onExit) }
				}
				h.sup = New(cfg, opt)
				go func() { h.done <- h.sup.Run(h.sigs) }()
				synctest.Wait()
				if tc.do != nil {
					tc.do(t, h)
					synctest.Wait()
				}
				for _, p := range []struct {
					what  string
					probe func() (bool, []string, error)
					want  []string
				}{{"Live", h.sup.Live, tc.live}, {"Ready", h.sup.Ready, tc.ready}, {"Health", h.sup.Health, tc.health}} {
					ok, reasons, err := p.probe()
					if err != nil || ok != (p.want == nil) || !slices.Equal(reasons, p.want) {
						t.Errorf("%s: %v %q %v; want %v %q", p.what, ok, reasons, err, p.want == nil, p.want)
					}
				}
				// Let the shutdown end (stop_timeout's SIGKILL) and Run return.
				h.fake.mu.Lock()
				h.fake.ignoreTerm = false
				h.fake.mu.Unlock()
				select {
				case h.sigs <- Order{Action: signals.Shutdown, Signal: unix.SIGTERM}:
				default:
				}
				<-h.done
				if _, _, err := h.sup.Live(); err != ErrFinished {
					t.Errorf("Live after Run returned: %v, want ErrFinished", err)
				}
			})
		})
	}
}
