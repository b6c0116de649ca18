// Command tend is a static PID-1 init and process supervisor.
//
// The runtime is tuned here rather than through GODEBUG, which children
// would inherit: no cgroup reading at start-up, no re-reading every second.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	_ "embed"
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/tend-init/tend/cli"
	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/ctl"
	"github.com/tend-init/tend/execshim"
	"github.com/tend-init/tend/pid1"
	"github.com/tend-init/tend/signals"
	"github.com/tend-init/tend/signals/early"
	"github.com/tend-init/tend/spawner"
)

// version, when set at link time (-ldflags '-X main.version=1.2.3', as
// `make VERSION=1.2.3` does), names a build that has no module version or
// VCS information of its own, such as one from a source tarball.
var version = ""

//go:embed LICENSE
var license string

func main() {
	// The spawner (tend re-executed by itself): nothing of tend runs.
	if spawner.IsSpawner(os.Args) {
		os.Exit(spawner.Serve())
	}
	// The exec shim (a service's limits, then its program): the same.
	if execshim.IsShim(os.Args) {
		os.Exit(execshim.Main(os.Args))
	}
	// pid1.Exit: when the kernel started tend, an exit would panic the
	// kernel ("Attempted to kill init"); it powers off instead.
	o, err := cli.Parse(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tend: %v\n", err)
		os.Exit(pid1.Exit(2))
	}
	switch o.Subcommand {
	case "check":
		early.Release()
		os.Exit(pid1.Exit(check(o)))
	case "ctl":
		early.Release()
		os.Exit(pid1.Exit(ctl.Main(o.SubArgs, os.Stdout, os.Stderr)))
	}
	switch o.Action {
	case "help":
		fmt.Print(cli.Help)
	case "version":
		// Read only here: start-up does not pay for the build info.
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			bi = nil
		}
		fmt.Println(versionLine(bi, version))
	case "license":
		fmt.Print(license)
	default:
		beforeRun()
		os.Exit(pid1.Main(o, takeEarly()))
	}
	os.Exit(pid1.Exit(0))
}

// takeEarly hands the signals that package early subscribed to in its init
// function (before the flags were read, before anything that takes time)
// to the supervisor's signal queue.
func takeEarly() pid1.Early {
	acted, fatal, procs, ok := early.Take()
	if !ok {
		return pid1.Early{}
	}
	return pid1.Early{
		Signals:  signals.Early{Acted: acted, Fatal: fatal, Signals: append(early.Acted[:len(early.Acted):len(early.Acted)], early.Fatal...)},
		MaxProcs: procs,
	}
}

// beforeRun is a test build's hook (main_slowstart.go).
var beforeRun = func() {}

// check validates a config file: every error on its own line, exit 1 when
// there is any. The file is the argument, else TEND_CONFIG.
func check(o cli.Options) int {
	path := o.Config
	switch len(o.SubArgs) {
	case 0:
	case 1:
		path = o.SubArgs[0]
	default:
		fmt.Fprintln(os.Stderr, "tend: usage: tend check [FILE]")
		return 2
	}
	if path == "" {
		fmt.Fprintln(os.Stderr, "tend: check: no file given and TEND_CONFIG is not set")
		return 2
	}
	cfg, err := config.Load(path, os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintln(os.Stderr, w)
	}
	if n := len(cfg.Files); n > 1 {
		fmt.Printf("%s: ok, %d service(s) from %d files\n", path, len(cfg.Services), n)
	} else {
		fmt.Printf("%s: ok, %d service(s)\n", path, len(cfg.Services))
	}
	return 0
}

// versionLine is what --version prints: the module version, then the VCS
// revision the binary was built from, its commit time and whether the work
// tree had uncommitted changes, then the Go release, e.g.
//
//	tend v0.0.0-20261129175541-1a2b3c4d5e6f+dirty (rev 1a2b3c4d5e6f, 2026-11-29T17:55:41Z, modified) go1.26.8
//
// bi is nil when the binary carries no build information. A version set at
// link time stands in for a missing module version ("(devel)"); a build
// without VCS stamping (-buildvcs=false, no .git) says so instead of a
// revision, unless it has a real module version (go install ...@v1.2.3).
func versionLine(bi *debug.BuildInfo, linked string) string {
	if bi == nil {
		v := linked
		if v == "" {
			v = "devel"
		}
		return "tend " + v + " (no build information)"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = linked
	}
	var rev, when string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var vcs []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		vcs = append(vcs, "rev "+rev)
		if when != "" {
			vcs = append(vcs, when)
		}
		if modified {
			vcs = append(vcs, "modified")
		}
	}
	line := "tend "
	switch {
	case v != "" && len(vcs) > 0:
		line += v + " (" + strings.Join(vcs, ", ") + ")"
	case v != "":
		line += v
	case len(vcs) > 0:
		line += "devel (" + strings.Join(vcs, ", ") + ")"
	default:
		line += "devel (no VCS information: built with -buildvcs=false or outside a git work tree)"
	}
	if bi.GoVersion != "" {
		line += " " + bi.GoVersion
	}
	return line
}
