package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// benchConfig writes a config of n services shaped like the supervisor
// benchmark's (bench/supervisor: a command with arguments, a restart
// policy, a backoff and a crash loop each).
func benchConfig(b *testing.B, n int) string {
	var s strings.Builder
	s.WriteString("log_level = \"warn\"\ncontrol_socket = \"\"\n")
	for i := range n {
		fmt.Fprintf(&s, "\n[services.s%05d]\ncommand = [\"/usr/bin/svc\", \"--tag\", \"s%05d\", \"--stamps\", \"/tmp/stamps\"]\n"+
			"restart = \"always\"\nbackoff = { type = \"fixed\", delay = \"1ns\" }\n"+
			"crash_loop = { max_restarts = 1000000, window = \"1s\", backoff = \"1ns\" }\n", i, i)
	}
	path := filepath.Join(b.TempDir(), "tend.toml")
	if err := os.WriteFile(path, []byte(s.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// How long a reload's parse takes: linear in the number of services.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			path := benchConfig(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Load(path, os.LookupEnv); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchTree writes the same n services one per file: a main file that
// includes conf.d/*.toml, and conf.d/sNNNNN.toml for each service.
func benchTree(b *testing.B, n int) (main string, service func(i int, tag string) (string, []byte)) {
	dir := b.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		b.Fatal(err)
	}
	main = filepath.Join(dir, "tend.toml")
	if err := os.WriteFile(main, []byte("log_level = \"warn\"\ncontrol_socket = \"\"\ninclude = [\"conf.d/*.toml\"]\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	service = func(i int, tag string) (string, []byte) {
		return filepath.Join(dir, "conf.d", fmt.Sprintf("s%05d.toml", i)), []byte(fmt.Sprintf(
			"[services.s%05d]\ncommand = [\"/usr/bin/svc\", \"--tag\", \"s%05d%s\", \"--stamps\", \"/tmp/stamps\"]\n"+
				"restart = \"always\"\nbackoff = { type = \"fixed\", delay = \"1ns\" }\n"+
				"crash_loop = { max_restarts = 1000000, window = \"1s\", backoff = \"1ns\" }\n", i, i, tag))
	}
	for i := range n {
		path, data := service(i, "")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return main, service
}

// A config of n services one per file: loaded from scratch, and reloaded
// by a Loader after one of the files changed. The reload decodes and
// parses only the changed file; it reads only the files whose stat moved
// ("old": files older than the racy window, the usual case, which the
// benchmark stands for by the Loader's clock) or every file ("fresh": all
// written in the last 2 s, as on the first reload right after a start).
func BenchmarkLoadOnePerFile(b *testing.B) {
	for _, n := range []int{1000, MaxFiles - 1} {
		main, service := benchTree(b, n)
		b.Run(fmt.Sprintf("%d/full", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Load(main, os.LookupEnv); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, age := range []string{"old", "fresh"} {
			b.Run(fmt.Sprintf("%d/reload-one-changed-%s", n, age), func(b *testing.B) {
				l := NewLoader(main, os.LookupEnv)
				if age == "old" {
					l.now = func() time.Time { return time.Now().Add(time.Hour) }
				}
				if _, err := l.Load(); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				round := 0
				for b.Loop() {
					round++
					path, data := service(n/2, fmt.Sprintf("-v%d", round))
					b.StopTimer()
					if err := os.WriteFile(path, data, 0o644); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					decodes, parses := l.decodes, l.parses
					if _, err := l.Load(); err != nil {
						b.Fatal(err)
					}
					if l.decodes != decodes+1 || l.parses != parses+1 {
						b.Fatalf("%d files decoded, %d services parsed; want 1 each", l.decodes-decodes, l.parses-parses)
					}
				}
			})
		}
	}
}
