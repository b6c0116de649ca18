package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
