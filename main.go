// Command tend is a static PID-1 init and process supervisor.
package main

import (
	_ "embed"
	"fmt"
	"os"

	"github.com/tend-init/tend/cli"
	pid1 "github.com/tend-init/tend/init"
)

var version = "0.1.0-dev"

//go:embed LICENSE
var license string

func main() {
	o, err := cli.Parse(os.Args[1:], os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tend: %v\n", err)
		os.Exit(2)
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
}
