package config

import "testing"

func TestOutputRotation(t *testing.T) {
	ok := []struct {
		keys    string
		max     int64
		backups int
	}{
		{`output = "/l"`, 0, 0},
		{`output = "/l"` + "\noutput_max_size = 0", 0, 0},
		{`output = "/l"` + "\noutput_max_size = \"10M\"", 10 << 20, DefaultOutputBackups},
		{`output = "/l"` + "\noutput_max_size = \"512K\"\noutput_backups = 3", 512 << 10, 3},
		{`output = "/l"` + "\noutput_max_size = \"1GiB\"\noutput_backups = 0", 1 << 30, 0},
		{`output = "/l"` + "\noutput_max_size = \"2 MB\"", 2 << 20, DefaultOutputBackups},
		{`output = "/l"` + "\noutput_max_size = 65536", 65536, DefaultOutputBackups},
	}
	for _, tt := range ok {
		s := mustParse(t, "[services.s]\ncommand = \"s\"\n"+tt.keys+"\n", nil).Services["s"]
		if s.OutputMaxSize != tt.max || s.OutputBackups != tt.backups {
			t.Errorf("%q: max %d backups %d, want %d %d", tt.keys, s.OutputMaxSize, s.OutputBackups, tt.max, tt.backups)
		}
	}

	bad := []struct {
		keys string
		want []want
	}{
		{"output_max_size = \"10M\"", []want{{3, "services.s.output_max_size", `output is "prefix": set output to a file path`}}},
		{"output = \"inherit\"\noutput_max_size = \"10M\"", []want{{4, "services.s.output_max_size", `output is "inherit"`}}},
		{"output = \"/l\"\noutput_max_size = \"10X\"", []want{{4, "services.s.output_max_size", `"10X" must be a size such as "10M"`}}},
		{"output = \"/l\"\noutput_max_size = \"M\"", []want{{4, "services.s.output_max_size", `must be a size`}}},
		{"output = \"/l\"\noutput_max_size = -1", []want{{4, "services.s.output_max_size", `must be a size`}}},
		{"output = \"/l\"\noutput_max_size = true", []want{{4, "services.s.output_max_size", `not a boolean`}}},
		{"output = \"/l\"\noutput_max_size = \"100\"", []want{{4, "services.s.output_max_size", `is 100 bytes; use 0 (no rotation) or at least 4096`}}},
		{"output = \"/l\"\noutput_max_size = \"99999999999G\"", []want{{4, "services.s.output_max_size", `too large`}}},
		{"output = \"/l\"\noutput_backups = 3", []want{{4, "services.s.output_backups", `has no effect without output_max_size`}}},
		{"output = \"/l\"\noutput_max_size = \"1M\"\noutput_backups = -1", []want{{5, "services.s.output_backups", `must be 0 or more`}}},
	}
	for _, tt := range bad {
		_, err := parse(t, "[services.s]\ncommand = \"s\"\n"+tt.keys+"\n", nil)
		t.Run(tt.keys, func(t *testing.T) { checkErrors(t, err, tt.want) })
	}
}

func TestRotatedOutputNotShared(t *testing.T) {
	src := `[services.a]
command = "a"
output = "/var/log/app.log"
output_max_size = "1M"

[services.b]
command = "b"
output = "/var/log/./app.log"

[services.c]
command = "c"
output = "/var/log/c.log"
output_max_size = "1M"

[services.d]
command = "d"
output = "/var/log/shared.log"

[services.e]
command = "e"
output = "/var/log/shared.log"
`
	_, err := parse(t, src, nil)
	checkErrors(t, err, []want{{4, "services.a.output_max_size", `rotates /var/log/app.log, which "b" also writes: a rotated file must have one writer`}})
}
