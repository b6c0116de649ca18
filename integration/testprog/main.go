// Command testprog is the integration tests' child: small behaviours a
// test needs from the program tend runs. It is never part of tend.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: testprog VERB [ARGS]")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "selfsignal":
		selfSignal(args)
	case "orphans":
		orphans(atoi(args[0]))
	case "status":
		status()
	case "waitsig":
		waitSig(args)
	case "exec-masked":
		execMasked(args)
	case "trap-term":
		trapTerm(args)
	case "listen":
		listen(args)
	case "notify":
		notify(args)
	case "http":
		serveHTTP(args)
	default:
		fail("unknown verb " + os.Args[1])
	}
}

// selfSignal sends each listed signal to its parent (tend) and waits for
// tend to forward it back; it prints one line per signal and exits 1 if any
// did not arrive.
func selfSignal(list []string) {
	ch := make(chan os.Signal, 64)
	var sigs []syscall.Signal
	for _, s := range list {
		n := syscall.Signal(atoi(s))
		sigs = append(sigs, n)
		signal.Notify(ch, n)
	}
	missing := 0
	for _, sig := range sigs {
		if err := syscall.Kill(os.Getppid(), sig); err != nil {
			fail(err.Error())
		}
		if waitFor(ch, sig, 5*time.Second) {
			fmt.Printf("ok %d\n", sig)
		} else {
			fmt.Printf("missing %d\n", sig)
			missing++
		}
	}
	if missing > 0 {
		os.Exit(1)
	}
}

func waitFor(ch chan os.Signal, want syscall.Signal, limit time.Duration) bool {
	deadline := time.After(limit)
	for {
		select {
		case got := <-ch:
			if got == want {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// orphans makes n processes whose parent exits at once, so that all of them
// are re-parented to tend, then waits for tend to reap every one of them and
// prints how many zombies were left.
func orphans(n int) {
	// Each subshell starts a background child and exits at once, so the
	// child (alive or already a zombie) is re-parented to tend.
	script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do ( (exit 0) & ); i=$((i+1)); done", n)
	if err := exec.Command("sh", "-c", script).Run(); err != nil {
		fail(err.Error())
	}
	deadline := time.Now().Add(20 * time.Second)
	var zombies, others int
	for {
		zombies, others = census()
		if (zombies == 0 && others == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("zombies=%d others=%d\n", zombies, others)
	if zombies > 0 {
		os.Exit(1)
	}
}

// census counts zombies and live processes other than PID 1 and this one.
func census() (zombies, others int) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == 1 || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if fields[0] == "Z" {
			zombies++
		} else {
			others++
		}
	}
	return zombies, others
}

// status prints what a child inherited: signal mask and ignored set, process
// group, the terminal's foreground group, and the environment's Go knobs.
func status() {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "SigBlk:") || strings.HasPrefix(line, "SigIgn:") {
			fmt.Println(strings.Join(strings.Fields(line), " "))
		}
	}
	pgid, _ := unix.Getpgid(0)
	fmt.Printf("pid=%d pgid=%d\n", os.Getpid(), pgid)
	if fg, err := unix.IoctlGetInt(0, unix.TIOCGPGRP); err == nil {
		fmt.Printf("tty-foreground=%d\n", fg)
	} else {
		fmt.Println("tty-foreground=none")
	}
}

// waitSig prints "ready", then appends the name of each listed signal it
// receives to FILE; it exits after the last signal in the list, or after
// the timeout.
func waitSig(args []string) {
	file := args[0]
	ch := make(chan os.Signal, 16)
	var stop syscall.Signal
	for _, s := range args[1:] {
		stop = syscall.Signal(atoi(s))
		signal.Notify(ch, stop)
	}
	fmt.Println("ready")
	deadline := time.After(20 * time.Second)
	for {
		select {
		case s := <-ch:
			f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				fail(err.Error())
			}
			fmt.Fprintf(f, "%d\n", s.(syscall.Signal))
			f.Close()
			if s == stop {
				return
			}
		case <-deadline:
			os.Exit(3)
		}
	}
}

// execMasked starts ARGS the way a careless parent would: SIGPIPE and
// SIGINT ignored, SIGUSR1 blocked. exec keeps both.
func execMasked(args []string) {
	signal.Ignore(syscall.SIGPIPE, syscall.SIGINT)
	runtime.LockOSThread()
	var set unix.Sigset_t
	set.Val[0] = 1 << (uint(syscall.SIGUSR1) - 1)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		fail(err.Error())
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		fail(err.Error())
	}
	fail(syscall.Exec(path, args, os.Environ()).Error())
}

// trapTerm writes its pid to FILE, then on SIGTERM appends "term" and exits
// (or, with "ignore", stays).
func trapTerm(args []string) {
	file := args[0]
	ignore := len(args) > 1 && args[1] == "ignore"
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM)
	if err := os.WriteFile(file, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		fail(err.Error())
	}
	for range ch {
		f, _ := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0o644)
		fmt.Fprintln(f, "term")
		f.Close()
		if !ignore {
			return
		}
	}
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err.Error())
	}
	return n
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "testprog:", msg)
	os.Exit(100)
}

// listen accepts TCP connections on ADDR after an optional delay, and
// closes each at once.
func listen(args []string) {
	if len(args) > 1 {
		d, _ := time.ParseDuration(args[1])
		time.Sleep(d)
	}
	l, err := net.Listen("tcp", args[0])
	if err != nil {
		fail(err.Error())
	}
	fmt.Println("listening")
	for {
		c, err := l.Accept()
		if err != nil {
			fail(err.Error())
		}
		c.Close()
	}
}

// notify waits DELAY, then tells $NOTIFY_SOCKET it is ready, as a systemd
// Type=notify daemon does, and stays up.
func notify(args []string) {
	d, _ := time.ParseDuration(args[0])
	time.Sleep(d)
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		fail("no NOTIFY_SOCKET")
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		fail(err.Error())
	}
	conn.Write([]byte("STATUS=warming up\n"))
	conn.Write([]byte("READY=1\nSTATUS=serving\nMAINPID=" + strconv.Itoa(os.Getpid()) + "\n"))
	time.Sleep(time.Hour)
}

// serveHTTP answers 200 on /healthz (and 404 elsewhere) at ADDR after DELAY.
func serveHTTP(args []string) {
	d, _ := time.ParseDuration(args[1])
	time.Sleep(d)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	fail(http.ListenAndServe(args[0], nil).Error())
}
