//go:build stress

// Command helper is the stress suite's child process: the services and
// main programs the scenarios need. It is never part of tend.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: helper VERB [ARGS]")
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "sigcount":
		sigCount(args[0])
	case "exitseq":
		exitSeq(args)
	case "orphans":
		orphans(atoi(args[0]), args[1])
	case "lines":
		lines(args[0], atoi(args[1]))
	case "bigline":
		bigLine(int64(atoi(args[0])))
	case "forkbomb":
		forkBomb(args)
	case "tick":
		tick(args[0])
	case "sleep":
		d, _ := time.ParseDuration(args[0])
		time.Sleep(d)
	default:
		fail("unknown verb " + os.Args[1])
	}
}

// counted are the signals sigcount counts one by one through a signalfd:
// USR1, USR2 and the real-time signals the runtime lets through.
func counted() []unix.Signal {
	list := []unix.Signal{unix.SIGUSR1, unix.SIGUSR2}
	for s := unix.Signal(35); s <= 64; s++ {
		list = append(list, s)
	}
	return list
}

// sigCount counts every instance of the counted signals it receives (the
// kernel queues real-time signals; a signalfd reads each one, where
// os/signal would coalesce them), and on SIGTERM writes what it saw to
// FILE as JSON and exits. "FILE.ready" appears once it counts.
func sigCount(file string) {
	var set unix.Sigset_t
	for _, s := range counted() {
		set.Val[(s-1)/64] |= 1 << ((uint(s) - 1) % 64)
	}
	if os.Getenv("HELPER_MASKED") == "" {
		// Blocked in every thread only if blocked before the runtime
		// starts: set the mask and exec again (exec keeps it).
		runtime.LockOSThread()
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
			fail(err.Error())
		}
		exe, _ := os.Executable()
		fail(unix.Exec(exe, os.Args, append(os.Environ(), "HELPER_MASKED=1")).Error())
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM)
	fd, err := unix.Signalfd(-1, &set, unix.SFD_CLOEXEC|unix.SFD_NONBLOCK)
	if err != nil {
		fail(err.Error())
	}
	counts := map[int]int{}
	f := os.NewFile(uintptr(fd), "signalfd")
	got := make(chan []int, 64)
	go func() {
		buf := make([]byte, 128*256)
		for {
			n, err := f.Read(buf)
			if err != nil {
				fail(err.Error())
			}
			var sigs []int
			for off := 0; off+128 <= n; off += 128 {
				sigs = append(sigs, int(*(*uint32)(unsafe.Pointer(&buf[off]))))
			}
			got <- sigs
		}
	}()
	os.WriteFile(file+".ready", nil, 0o644)
	for {
		select {
		case sigs := <-got:
			for _, s := range sigs {
				counts[s]++
			}
		case <-term:
			at := time.Now().UnixNano()
			// What is already queued was sent before the TERM reached us.
			deadline := time.After(100 * time.Millisecond)
		drain:
			for {
				select {
				case sigs := <-got:
					for _, s := range sigs {
						counts[s]++
					}
				case <-deadline:
					break drain
				}
			}
			b, _ := json.Marshal(map[string]any{"term_ns": at, "counts": counts})
			if err := os.WriteFile(file, b, 0o644); err != nil {
				fail(err.Error())
			}
			return
		}
	}
}

// exitSeq is one run of a service that exits with a new code each time:
// run K (counted in FILE) waits SLEEP, appends "K code" to FILE.log and
// exits with K mod 256, so the test can match every exit tend logged. Runs
// after the LIMITth stay up instead (the service then stops restarting).
func exitSeq(args []string) {
	file := args[0]
	limit, pause := 0, time.Duration(0)
	if len(args) > 1 {
		limit = atoi(args[1])
	}
	if len(args) > 2 {
		pause, _ = time.ParseDuration(args[2])
	}
	b, _ := os.ReadFile(file)
	k, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	k++
	if err := os.WriteFile(file, []byte(strconv.Itoa(k)), 0o644); err != nil {
		fail(err.Error())
	}
	if limit > 0 && k > limit {
		forever()
	}
	time.Sleep(pause)
	code := k % 256
	f, err := os.OpenFile(file+".log", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		fail(err.Error())
	}
	fmt.Fprintf(f, "%d %d\n", k, code)
	f.Close()
	os.Exit(code)
}

// orphans makes n processes whose parent exits at once, so that each is
// re-parented to tend and reaped there, then writes "done" to FILE and
// stays (a service that ends would be restarted). Forks are raw: the child
// and grandchild run no Go code, only exit system calls.
func orphans(n int, file string) {
	made := 0
	for made < n {
		pid, errno := rawFork()
		if errno != 0 {
			time.Sleep(time.Millisecond)
			continue
		}
		if pid == 0 {
			// The child: fork the orphan-to-be, then exit at once. The
			// orphan exits at once too (a zombie re-parented to tend).
			rawFork()
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
		}
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		made++
	}
	os.WriteFile(file, []byte(fmt.Sprintf("done %d\n", made)), 0o644)
	forever()
}

// forever stays up. (An empty select would end the program: the runtime
// reports a deadlock when no goroutine can run.)
func forever() {
	for {
		time.Sleep(time.Hour)
	}
}

// rawFork is fork(2) without the runtime: only raw system calls may run in
// the child.
func rawFork() (int, syscall.Errno) {
	r, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	return int(r), errno
}

// lines writes N lines "PREFIX SEQ CRC" with a body of varying length, so a
// torn or mixed line fails its checksum.
func lines(prefix string, n int) {
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	for i := range n {
		body := strings.Repeat(string(rune('a'+i%26)), i%200)
		payload := fmt.Sprintf("%s %d %s", prefix, i, body)
		fmt.Fprintf(w, "%s %08x\n", payload, crc32.ChecksumIEEE([]byte(payload)))
	}
	w.Flush()
}

// bigLine writes n bytes without a newline, then one newline.
func bigLine(n int64) {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = 'x'
	}
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := os.Stdout.Write(buf[:k]); err != nil {
			fail(err.Error())
		}
		n -= k
	}
	os.Stdout.Write([]byte("\n"))
}

// forkBomb (HOLD FOR [WAIT]) waits WAIT, then forks, as fast as the kernel
// allows, children that live HOLD and exit; a refused fork is retried
// 100µs later. It keeps a pids cgroup at its limit, with a little churn,
// for FOR, then kills its children and exits 0. Its children run no Go
// code: their dispositions are reset and they sleep in a raw system call.
func forkBomb(args []string) {
	hold, forDur := args[0], args[1]
	if len(args) > 2 {
		wait, err := time.ParseDuration(args[2])
		if err != nil {
			fail(err.Error())
		}
		time.Sleep(wait)
	}
	d, err := time.ParseDuration(hold)
	if err != nil {
		fail(err.Error())
	}
	total, err := time.ParseDuration(forDur)
	if err != nil {
		fail(err.Error())
	}
	ts := unix.NsecToTimespec(d.Nanoseconds())
	dfl := kernelSigaction{} // SIG_DFL
	sigs := []uintptr{uintptr(unix.SIGTERM), uintptr(unix.SIGINT), uintptr(unix.SIGHUP), uintptr(unix.SIGUSR1), uintptr(unix.SIGUSR2)}
	refused, made := 0, 0
	live := map[int]bool{}
	end := time.Now().Add(total)
	for time.Now().Before(end) {
		r, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
		if errno == 0 && r == 0 {
			for _, s := range sigs {
				syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, s, uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
			}
			syscall.RawSyscall(syscall.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
		}
		if errno != 0 {
			refused++
			time.Sleep(100 * time.Microsecond)
		} else {
			made++
			live[int(r)] = true
		}
		for {
			var ws unix.WaitStatus
			pid, _ := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid <= 0 {
				break
			}
			delete(live, pid)
		}
	}
	for pid := range live {
		unix.Kill(pid, unix.SIGKILL)
	}
	for range live {
		var ws unix.WaitStatus
		unix.Wait4(-1, &ws, 0, nil)
	}
	fmt.Printf("forkbomb done: %d forks, %d refused\n", made, refused)
}

// tick writes a line every PERIOD, without forking.
func tick(period string) {
	d, err := time.ParseDuration(period)
	if err != nil {
		fail(err.Error())
	}
	for i := 0; ; i++ {
		fmt.Printf("tick %d\n", i)
		time.Sleep(d)
	}
}

// kernelSigaction is the kernel's struct sigaction (amd64, arm64).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		fail(err.Error())
	}
	return n
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "helper:", msg)
	os.Exit(100)
}
