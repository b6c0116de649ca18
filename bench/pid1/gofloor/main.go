// Command gofloor is the "Go floor" of the PID-1 benchmark: the smallest
// static Go program that starts the program after `--` and waits for it,
// with no signal handling and no logging. Whatever a Go init spends beyond
// this is its own; this much, the Go runtime costs any Go program.
//
//	CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o gofloor ./bench/pid1/gofloor
package main

import (
	"os"
	"strings"
	"syscall"
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		os.Exit(2)
	}
	path := args[0]
	if !strings.Contains(path, "/") {
		for _, dir := range strings.Split(os.Getenv("PATH"), ":") {
			if syscall.Access(dir+"/"+path, 1) == nil { // X_OK
				path = dir + "/" + path
				break
			}
		}
	}
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		os.Exit(127)
	}
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != syscall.EINTR {
			break
		}
	}
	switch {
	case ws.Exited():
		os.Exit(ws.ExitStatus())
	case ws.Signaled():
		os.Exit(128 + int(ws.Signal()))
	}
	os.Exit(1)
}
