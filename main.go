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

	"github.com/tend-init/tend/cli"
	"github.com/tend-init/tend/config"
	"github.com/tend-init/tend/control"
	pid1 "github.com/tend-init/tend/init"
)

var version = "0.1.0-dev"

//go:embed LICENSE
var license string

func main() {
	// pid1.Exit: when the kernel started tend, an exit would panic the
	// kernel ("Attempted to kill init"); it powers off instead.
	o, err := cli.Parse(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tend: %v\n", err)
		os.Exit(pid1.Exit(2))
	}
	switch o.Subcommand {
	case "check":
		os.Exit(pid1.Exit(check(o)))
	case "ctl":
		os.Exit(pid1.Exit(control.CLI(o.SubArgs, os.Stdout, os.Stderr)))
	}
	switch o.Action {
	case "help":
		fmt.Print(cli.Help)
	case "version":
		fmt.Println("tend", version)
	case "license":
		fmt.Print(license)
	default:
		os.Exit(pid1.Main(o))
	}
	os.Exit(pid1.Exit(0))
}

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
	fmt.Printf("%s: ok, %d service(s)\n", path, len(cfg.Services))
	return 0
}
