package cli

import (
	"errors"
	"reflect"
	"strings"
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
			o.KillGroup, o.Command = true, []string{"prog", "-v"}
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
			o.KillGroup, o.Verbosity, o.Grace, o.Config = true, 2, 300*time.Millisecond, "c.toml"
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

// Rewrites and parent-death signals that tend can never receive are refused
// in one line that says why; the ones it can receive still parse.
func TestSignalsNeverReceived(t *testing.T) {
	cases := []struct {
		args []string
		want string // part of the one-line error; "" = accepted
	}{
		{[]string{"-r", "34:15", "p"}, "-r 34:15: signal 34 (SIGRTMIN) never reaches tend: the Go runtime keeps signals 32-34 for itself, so this rewrite could never apply; remove it"},
		{[]string{"-r", "32:15", "p"}, "signal 32 (SIG32) never reaches tend"},
		{[]string{"--rewrite=33:0", "p"}, "--rewrite 33:0: signal 33 (SIG33) never reaches tend"},
		{[]string{"-r", "RTMIN:TERM", "p"}, "signal 34 (SIGRTMIN) never reaches tend"},
		{[]string{"-r", "9:15", "p"}, "-r 9:15: SIGKILL cannot be caught, so this rewrite could never apply"},
		{[]string{"-r", "STOP:0", "p"}, "SIGSTOP cannot be caught"},
		{[]string{"-r", "URG:TERM", "p"}, "SIGURG is the Go runtime's own"},
		{[]string{"-r", "17:10", "p"}, "SIGCHLD is tend's own"},
		{[]string{"-r", "PIPE:0", "p"}, "SIGPIPE is absorbed by tend"},
		{[]string{"-p", "33", "p"}, "-p 33: signal 33 (SIG33) never reaches tend: the Go runtime keeps signals 32-34 for itself; choose another signal"},
		{[]string{"-p", "URG", "p"}, "SIGURG is the Go runtime's own"},

		{[]string{"-r", "35:15", "p"}, ""},
		{[]string{"-r", "RTMAX:0", "p"}, ""},
		{[]string{"-r", "31:15", "p"}, ""},
		{[]string{"-r", "15:34", "p"}, ""}, // tend can send what it cannot receive
		{[]string{"-r", "TERM:KILL", "p"}, ""},
		{[]string{"-r", "HUP:0", "p"}, ""},
		{[]string{"-p", "KILL", "p"}, ""}, // the kernel delivers it; tini's usual -p
		{[]string{"-p", "SIGTERM", "p"}, ""},
	}
	for _, c := range cases {
		o, err := Parse(c.args, env(nil))
		if c.want == "" {
			if err != nil {
				t.Errorf("Parse(%q): %v", c.args, err)
			}
			continue
		}
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) = %v, want one line containing %q", c.args, err, c.want)
		}
		if len(o.Rewrite) != 0 || o.ParentDeath != 0 {
			t.Errorf("Parse(%q) kept %v / %v", c.args, o.Rewrite, o.ParentDeath)
		}
	}
}

// Every signal tend can be sent is either rewritable or refused with a
// reason, and the refused ones are exactly those the router never rewrites.
func TestRewriteNeverAppliesMatchesRoute(t *testing.T) {
	for sig := unix.Signal(1); sig <= signals.Max; sig++ {
		why := rewriteNeverApplies(sig)
		handled := false
		for _, h := range signals.Handled() {
			handled = handled || h == sig
		}
		// A rewrite applies when the signal is subscribed and Route gives
		// the rewritten signal in some mode.
		applies := false
		for _, mode := range []signals.Mode{signals.Wrapper, signals.Supervisor} {
			_, got := signals.Route(mode, signals.Rewrite{sig: unix.SIGWINCH}, sig)
			applies = applies || got == unix.SIGWINCH && sig != unix.SIGWINCH
		}
		if sig == unix.SIGWINCH {
			applies = true
		}
		if (why == "") != (handled && applies) {
			t.Errorf("%s: rewriteNeverApplies = %q, but subscribed %v and rewritten %v", signals.Name(sig), why, handled, applies)
		}
	}
}
