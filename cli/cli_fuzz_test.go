package cli

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/signals"
)

// FuzzCLI: the command line (NUL-separated arguments) and the environment
// (KEY=VALUE lines). Seeds are in testdata/fuzz/FuzzCLI; run with
//
//	go test -run '^$' -fuzz '^FuzzCLI$' -fuzztime 2m ./cli
func FuzzCLI(f *testing.F) {
	f.Fuzz(func(t *testing.T, argline, envlines string) {
		var args []string
		if argline != "" {
			args = strings.Split(argline, "\x00")
		}
		envm := map[string]string{}
		for _, l := range strings.Split(envlines, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				envm[k] = v
			}
		}
		o, err := Parse(slices.Clone(args), env(envm))
		o2, err2 := Parse(slices.Clone(args), env(envm))
		o.Env, o2.Env = nil, nil
		if (err == nil) != (err2 == nil) || err == nil && !reflect.DeepEqual(o, o2) {
			t.Fatalf("two parses differ: %v / %v", err, err2)
		}
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) || ue.msg == "" || strings.Contains(ue.msg, "\n") && !strings.ContainsAny(argline+envlines, "\n") {
				t.Fatalf("want a one-line usage error, got %T %q", err, err)
			}
			return
		}
		switch {
		case o.Subcommand != "":
			if o.Subcommand != args[0] || !slices.Equal(o.SubArgs, args[1:]) || o.Subcommand != "check" && o.Subcommand != "ctl" {
				t.Fatalf("subcommand %q %q from %q", o.Subcommand, o.SubArgs, args)
			}
			return
		case o.Action != "":
			if !slices.Contains([]string{"help", "version", "license"}, o.Action) {
				t.Fatalf("action %q", o.Action)
			}
			return
		}
		// The program and its arguments are the end of the command line, as given.
		if len(o.Command) == 0 && o.Config == "" || len(o.Command) > len(args) || !slices.Equal(o.Command, args[len(args)-len(o.Command):]) {
			t.Fatalf("command %q config %q from %q", o.Command, o.Config, args)
		}
		if o.Verbosity < 0 || o.Grace < 0 {
			t.Fatalf("verbosity %d grace %v", o.Verbosity, o.Grace)
		}
		for code := range o.ExitRemap {
			if code < 0 || code > 255 {
				t.Fatalf("exit code %d", code)
			}
		}
		for from, to := range o.Rewrite {
			if rewriteNeverApplies(from) != "" || to < 0 || to > signals.Max {
				t.Fatalf("rewrite %d:%d", from, to)
			}
		}
		if p := o.ParentDeath; p != 0 && (p < 1 || p > signals.Max || neverReceived(p) != "") {
			t.Fatalf("parent-death signal %d", p)
		}
		if o.ParentDeath == unix.SIGURG {
			t.Fatal("SIGURG as parent-death signal")
		}
	})
}
