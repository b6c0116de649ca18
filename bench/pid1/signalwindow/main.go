// Command signalwindow measures how long after exec a signal still ends
// tend: it starts `TEND -- sleep 0.3` RUNS times for each delay, sends the
// signal that long after exec returned, and counts the runs in which tend
// itself died of it (not the ones where a forwarded signal ended the
// child). It measures, never asserts; docs/reliability.md ("The first
// milliseconds") has its figures.
//
//	go run ./bench/pid1/signalwindow [-runs 30] [-signal TERM] [-delays 3ms,5ms,...] TEND [TEND...]
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

func main() {
	runs := flag.Int("runs", 30, "runs at each delay")
	sigName := flag.String("signal", "TERM", "TERM or USR1")
	delays := flag.String("delays", "3ms,5ms,7ms,9ms,11ms,13ms,15ms", "delays after exec, comma-separated")
	flag.Parse()
	sig := syscall.SIGTERM
	if *sigName == "USR1" {
		sig = syscall.SIGUSR1
	}
	var ds []time.Duration
	for _, f := range strings.Split(*delays, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ds = append(ds, d)
	}
	fmt.Printf("| SIG%s this long after exec |", *sigName)
	for _, d := range ds {
		fmt.Printf(" %s |", d)
	}
	fmt.Println()
	for _, bin := range flag.Args() {
		fmt.Printf("| %s |", bin)
		for _, d := range ds {
			killed := 0
			for range *runs {
				if diedOf(bin, d, sig) {
					killed++
				}
			}
			fmt.Printf(" %d/%d |", killed, *runs)
		}
		fmt.Println()
	}
}

// diedOf starts bin and reports whether sig, sent d after exec, killed it.
func diedOf(bin string, d time.Duration, sig syscall.Signal) bool {
	cmd := exec.Command(bin, "--", "sleep", "0.3")
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	time.Sleep(d)
	_ = cmd.Process.Signal(sig)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.Sys().(syscall.WaitStatus).Signaled()
	}
	return false
}
