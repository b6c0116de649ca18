package cli

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/signals"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want func(*Options)
	}{
		{"program without --", []string{"sh", "-c", "x"}, nil, func(o *Options) { o.Command = []string{"sh", "-c", "x"} }},
		{"options then --", []string{"-s", "-g", "--", "prog", "-v"}, nil, func(o *Options) {
			o.Subreaper, o.KillGroup, o.Command = true, true, []string{"prog", "-v"}
		}},
		{"bundled and attached values", []string{"-vvgwe143", "-e", "2", "-p", "SIGKILL", "prog"}, nil, func(o *Options) {
			o.Verbosity, o.KillGroup, o.WarnOrphans = 2, true, true
			o.ExitRemap = map[int]bool{143: true, 2: true}
			o.ParentDeath = unix.SIGKILL
			o.Command = []string{"prog"}
		}},
		{"rewrite forms", []string{"-r", "15:3", "--rewrite=1:0", "--rewrite", "USR1:USR2", "-c", "--single-child", "prog"}, nil, func(o *Options) {
			o.Rewrite = signals.Rewrite{unix.SIGTERM: unix.SIGQUIT, unix.SIGHUP: 0, unix.SIGUSR1: unix.SIGUSR2}
			o.Command = []string{"prog"}
		}},
		{"config only", []string{"--config", "/etc/tend.toml"}, nil, func(o *Options) { o.Config = "/etc/tend.toml" }},
		{"config and program", []string{"-f", "a.toml", "--", "go", "test"}, nil, func(o *Options) {
			o.Config, o.Command = "a.toml", []string{"go", "test"}
		}},
		{"check is a subcommand first", []string{"check", "x.toml"}, nil, func(o *Options) { o.Subcommand, o.SubArgs = "check", []string{"x.toml"} }},
		{"-- check runs a program", []string{"--", "check"}, nil, func(o *Options) { o.Command = []string{"check"} }},
		{"tini environment", []string{"prog"}, map[string]string{"TINI_SUBREAPER": "1", "TINI_KILL_PROCESS_GROUP": "1", "TINI_VERBOSITY": "2", "TEND_GRACE": "300ms", "TEND_CONFIG": "c.toml"}, func(o *Options) {
			o.Subreaper, o.KillGroup, o.Verbosity, o.Grace, o.Config = true, true, 2, 300*time.Millisecond, "c.toml"
			o.Command = []string{"prog"}
		}},
		{"help stops parsing", []string{"-h", "-x"}, nil, func(o *Options) { o.Action = "help" }},
		{"version", []string{"--version"}, nil, func(o *Options) { o.Action = "version" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse(c.args, env(c.env))
			if err != nil {
				t.Fatal(err)
			}
			want := Options{ExitRemap: map[int]bool{}, Rewrite: signals.Rewrite{}, Grace: DefaultGrace}
			c.want(&want)
			got.Env, want.Env = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := [][]string{
		{"-x", "prog"}, {"--nope"}, {}, {"-e"}, {"-e", "256", "p"}, {"-e", "-1", "p"},
		{"-r", "1", "p"}, {"-p", "NOPE", "p"}, {"--version=2"}, {"--config"}, {"--config="},
	}
	for _, args := range cases {
		_, err := Parse(args, env(nil))
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("Parse(%q) = %v, want a usage error", args, err)
		}
	}
}
