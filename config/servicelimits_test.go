package config

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func intp(n int) *int { return &n }

func TestServiceLimitsGood(t *testing.T) {
	tests := []struct {
		name string
		keys string
		want func(s *Service) bool
	}{
		{"none", ``, func(s *Service) bool {
			return s.Limits == nil && s.Umask == nil && s.Nice == nil && s.OOMScoreAdj == nil &&
				!s.HasChildSettings() && !s.HasCgroupLimits()
		}},
		{"the example", `limits = { nofile = 65536, nproc = 512, core = 0, memlock = "64M" }`, func(s *Service) bool {
			return reflect.DeepEqual(s.Limits, []Rlimit{
				{"core", unix.RLIMIT_CORE, 0},
				{"memlock", unix.RLIMIT_MEMLOCK, 64 << 20},
				{"nofile", unix.RLIMIT_NOFILE, 65536},
				{"nproc", unix.RLIMIT_NPROC, 512},
			}) && s.HasChildSettings()
		}},
		{"unlimited", `limits = { core = "unlimited", nofile = "unlimited", cpu = 10 }`, func(s *Service) bool {
			return len(s.Limits) == 3 && s.Limits[0].Value == Unlimited && s.Limits[1].Value == 10 && s.Limits[2].Value == Unlimited
		}},
		{"sizes", `limits = { as = "1G", data = "512KiB", fsize = "2MB", stack = 8388608, msgqueue = "1T" }`, func(s *Service) bool {
			return reflect.DeepEqual([]uint64{s.Limits[0].Value, s.Limits[1].Value, s.Limits[2].Value, s.Limits[3].Value, s.Limits[4].Value},
				[]uint64{1 << 30, 512 << 10, 2 << 20, 1 << 40, 8 << 20})
		}},
		{"a count as a string", `limits = { nofile = "1024" }`, func(s *Service) bool { return s.Limits[0].Value == 1024 }},
		{"table form", "[services.a.limits]\nnofile = 100", func(s *Service) bool { return s.Limits[0].Value == 100 }},
		{"umask", `umask = "027"`, func(s *Service) bool { return *s.Umask == 0o27 && s.HasChildSettings() }},
		{"umask 0", `umask = "0"`, func(s *Service) bool { return *s.Umask == 0 }},
		{"umask 0o", `umask = "0o077"`, func(s *Service) bool { return *s.Umask == 0o77 }},
		{"nice", `nice = 5`, func(s *Service) bool { return *s.Nice == 5 && s.HasChildSettings() }},
		{"nice bounds", "nice = -20", func(s *Service) bool { return *s.Nice == -20 }},
		{"nice 19", "nice = 19", func(s *Service) bool { return *s.Nice == 19 }},
		{"oom_score_adj", "oom_score_adj = -1000", func(s *Service) bool { return *s.OOMScoreAdj == -1000 }},
		{"oom_score_adj 1000", "oom_score_adj = 1000", func(s *Service) bool { return *s.OOMScoreAdj == 1000 }},
		{"memory_max", `memory_max = "512M"`, func(s *Service) bool { return s.MemoryMax == 512<<20 && s.HasCgroupLimits() && !s.HasChildSettings() }},
		{"memory_max bytes", `memory_max = 1048576`, func(s *Service) bool { return s.MemoryMax == 1<<20 }},
		{"cpu_max string", `cpu_max = "1.5"`, func(s *Service) bool { return s.CPUMax == 1.5 && s.CPUMaxFile() == "150000 100000" }},
		{"cpu_max float", `cpu_max = 0.25`, func(s *Service) bool { return s.CPUMaxFile() == "25000 100000" }},
		{"cpu_max int", `cpu_max = 2`, func(s *Service) bool { return s.CPUMaxFile() == "200000 100000" }},
		{"pids_max", `pids_max = 100`, func(s *Service) bool { return s.PidsMax == 100 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, "[services.a]\ncommand = \"a\"\n"+tt.keys+"\n", nil)
			if s := cfg.Services["a"]; !tt.want(s) {
				t.Errorf("%s: got limits %+v umask %v nice %v oom %v memory %d cpu %v pids %d", tt.keys,
					s.Limits, s.Umask, s.Nice, s.OOMScoreAdj, s.MemoryMax, s.CPUMax, s.PidsMax)
			}
		})
	}
}

func TestServiceLimitsBad(t *testing.T) {
	known := strings.Join(RlimitNames(), ", ")
	tests := []struct {
		keys string
		key  string
		msg  string
	}{
		{`limits = { nofile = "many" }`, "services.a.limits.nofile", `must be a number such as 1024, or "unlimited", not "many"`},
		{`limits = { nofile = -1 }`, "services.a.limits.nofile", "must be 0 or more, got -1"},
		{`limits = { nofile = 1.5 }`, "services.a.limits.nofile", "not a float 1.5"},
		{`limits = { nproc = true }`, "services.a.limits.nproc", "not a boolean true"},
		{`limits = { cpu = "1h" }`, "services.a.limits.cpu", "a number of seconds"},
		{`limits = { memlock = "64X" }`, "services.a.limits.memlock", `a size such as "64M" or "1G", or "unlimited", not "64X"`},
		{`limits = { memlock = "M" }`, "services.a.limits.memlock", `not "M"`},
		{`limits = { memlock = "99999999999T" }`, "services.a.limits.memlock", `not "99999999999T"`},
		{`limits = { core = -5 }`, "services.a.limits.core", "must be 0 or more bytes"},
		{`limits = { nofiles = 10 }`, "services.a.limits.nofiles", `unknown limit "nofiles"; did you mean "nofile"? (known: ` + known + ")"},
		{`limits = { open_files = 10 }`, "services.a.limits.open_files", `unknown limit "open_files" (known: as, core, cpu, data, fsize, locks, memlock, msgqueue, nofile, nproc, rtprio, sigpending, stack)`},
		{`limits = 10`, "services.a.limits", "must be a table"},
		{`umask = 27`, "services.a.umask", `must be an octal string such as "027", not an integer`},
		{`umask = "089"`, "services.a.umask", `"089" is not an octal umask`},
		{`umask = "1777"`, "services.a.umask", `"1777" is not an octal umask`},
		{`umask = ""`, "services.a.umask", `"" is not an octal umask`},
		{`nice = 20`, "services.a.nice", "20 is out of range: use -20 (most favoured) to 19"},
		{`nice = -21`, "services.a.nice", "-21 is out of range"},
		{`nice = "5"`, "services.a.nice", `must be an integer from -20 (most favoured) to 19 (least), not "5"`},
		{`oom_score_adj = 1001`, "services.a.oom_score_adj", "1001 is out of range: use -1000"},
		{`oom_score_adj = 1.0`, "services.a.oom_score_adj", "must be an integer from -1000"},
		{`memory_max = "lots"`, "services.a.memory_max", `must be a number of bytes such as 65536 or a size such as "64M" or "1G", not "lots"`},
		{`memory_max = "unlimited"`, "services.a.memory_max", `not "unlimited"`},
		{`memory_max = 0`, "services.a.memory_max", "must be more than 0 bytes"},
		{`cpu_max = "fast"`, "services.a.cpu_max", `must be a number of CPUs such as 1.5 or "0.5", not "fast"`},
		{`cpu_max = 0`, "services.a.cpu_max", "0 CPUs is out of range"},
		{`cpu_max = "nan"`, "services.a.cpu_max", "NaN CPUs is out of range"},
		{`pids_max = "100"`, "services.a.pids_max", `must be an integer number of processes and threads, such as 100, not "100"`},
		{`pids_max = 0`, "services.a.pids_max", "must be 1 or more, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.keys, func(t *testing.T) {
			_, err := parse(t, "[services.a]\ncommand = \"a\"\n"+tt.keys+"\n", nil)
			checkErrors(t, err, []want{{3, tt.key, tt.msg}})
		})
	}
}

// A multi-line limits table: each problem on its own line.
func TestServiceLimitsLines(t *testing.T) {
	src := `[services.a]
command = "a"
[services.a.limits]
nofile = 10
nproc = "x"
memlock = "64M"
bogus = 1
`
	_, err := parse(t, src, nil)
	checkErrors(t, err, []want{
		{5, "services.a.limits.nproc", "must be a number"},
		{7, "services.a.limits.bogus", "unknown limit"},
	})
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 1000: "1000", 64 << 20: "64M", 1 << 30: "1G", 3 << 10: "3K", Unlimited: "unlimited"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
