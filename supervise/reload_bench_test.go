package supervise

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/signals"
	"golang.org/x/sys/unix"
)

// benchSupervisor runs cfg's services over the fake launcher, outside a
// synctest bubble (real time; the fake's processes live until signalled).
func benchSupervisor(b *testing.B, cfg *config.Config, load func() (*config.Config, error)) *Supervisor {
	log := logrus.New()
	log.Out = io.Discard
	sup := New(cfg, Options{Launcher: newFake(), Log: log, Sink: NewSink(io.Discard, io.Discard, "text"), LoadConfig: load})
	orders := make(chan Order, 1)
	done := make(chan int, 1)
	go func() { done <- sup.Run(orders) }()
	b.Cleanup(func() {
		orders <- Order{Action: signals.Shutdown, Signal: unix.SIGTERM}
		<-done
	})
	for {
		running := 0
		sup.Do(func() {
			for _, svc := range sup.services {
				if svc.state == Running {
					running++
				}
			}
		})
		if running == len(cfg.Services) {
			return sup
		}
		time.Sleep(time.Millisecond)
	}
}

// What a reload of 1 of n services costs the supervisor: Apply of a config
// in which one service changed. "same": the other services are the very
// *Service of the running config, as a config.Loader gives them; "equal":
// equal copies, as a load from scratch gives.
func BenchmarkApply(b *testing.B) {
	env := make([]string, 30)
	for i := range env {
		env[i] = fmt.Sprintf("VAR%02d=/some/value/of/a/typical/length/%d", i, i)
	}
	for _, n := range []int{1000, 10000} {
		for _, mode := range []string{"same", "equal"} {
			b.Run(fmt.Sprintf("%d/%s", n, mode), func(b *testing.B) {
				mk := func(i int) *config.Service {
					s := testService(fmt.Sprintf("s%05d", i))
					s.Env = env
					s.Command = []string{"/usr/bin/svc", "--tag", s.Name}
					return s
				}
				specs := make([]*config.Service, n)
				for i := range specs {
					specs[i] = mk(i)
				}
				sup := benchSupervisor(b, testConfig(specs...), nil)
				round := 0
				b.ReportAllocs()
				for b.Loop() {
					round++
					b.StopTimer()
					next := make([]*config.Service, n)
					for i, s := range specs {
						if mode == "equal" {
							s = mk(i)
						}
						next[i] = s
					}
					next[n/2] = mk(n / 2)
					next[n/2].Command = append(next[n/2].Command, fmt.Sprint(round))
					cfg := testConfig(next...)
					b.StartTimer()
					if err := sup.Apply(cfg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// The whole reload in the process, as `tend ctl reload` asks for it:
// Supervisor.Reload, which loads the config (a config.Loader over 1,000
// services one per file, one of them changed) and applies it.
func BenchmarkReloadOnePerFile(b *testing.B) {
	const n = 1000
	dir := b.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		b.Fatal(err)
	}
	main := filepath.Join(dir, "tend.toml")
	write := func(path, body string) {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write(main, "log_level = \"warn\"\ncontrol_socket = \"\"\ninclude = [\"conf.d/*.toml\"]\n")
	service := func(i int, tag string) {
		write(filepath.Join(dir, "conf.d", fmt.Sprintf("s%05d.toml", i)), fmt.Sprintf(
			"[services.s%05d]\ncommand = [\"/usr/bin/svc\", \"--tag\", \"s%05d%s\"]\noutput = \"inherit\"\n"+
				"backoff = { type = \"fixed\", delay = \"10s\" }\n", i, i, tag))
	}
	for i := range n {
		service(i, "")
	}
	// Files older than the Loader's racy window are judged by their stat
	// alone, as on a machine where the config was written at start.
	time.Sleep(2100 * time.Millisecond)
	loader := config.NewLoader(main, nil)
	cfg, err := loader.Load()
	if err != nil {
		b.Fatal(err)
	}
	sup := benchSupervisor(b, cfg, loader.Load)
	round := 0
	b.ReportAllocs()
	for b.Loop() {
		round++
		b.StopTimer()
		service(n/2, fmt.Sprintf("-v%d", round))
		b.StartTimer()
		if _, err := sup.Reload(); err != nil {
			b.Fatal(err)
		}
	}
}
