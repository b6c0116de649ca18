//go:build stress

package stress

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func rounds() int {
	if n, err := strconv.Atoi(os.Getenv("STRESS_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 20
}

// floodSet is what a flood rotates over.
type floodSet struct {
	name string
	sigs []syscall.Signal
}

func mixedFlood() floodSet {
	s := floodSet{name: "USR1, USR2 and 35-64", sigs: []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2}}
	for n := 35; n <= 64; n++ {
		s.sigs = append(s.sigs, syscall.Signal(n))
	}
	return s
}

func realtimeFlood() floodSet {
	s := floodSet{name: "30 real-time signals (35-64)"}
	for n := 35; n <= 64; n++ {
		s.sigs = append(s.sigs, syscall.Signal(n))
	}
	return s
}

// floodResult is one round.
type floodResult struct {
	delay     time.Duration // from kill(TERM) to the child's receipt
	lost      bool
	sent      int
	refused   int // kill() refused: the real-time queue (RLIMIT_SIGPENDING) was full
	forwarded int // signals the child counted, TERM aside
	tendCPU   time.Duration
	sendTime  time.Duration
}

// flood sends n signals from set to pid, a TERM after the first half, from
// a thread pinned to cpu. It returns when the TERM was sent, the time it
// was sent, and (once all are sent) the totals.
func flood(pid, n int, set floodSet, cpu int) (termAt <-chan time.Time, done <-chan [2]int) {
	ta := make(chan time.Time, 1)
	dn := make(chan [2]int, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if cpu >= 0 {
			var mask unix.CPUSet
			mask.Set(cpu)
			unix.SchedSetaffinity(0, &mask)
		}
		sent, refused := 0, 0
		for i := range n {
			if i == n/2 {
				ta <- time.Now()
				syscall.Kill(pid, syscall.SIGTERM)
			}
			if err := syscall.Kill(pid, set.sigs[i%len(set.sigs)]); err != nil {
				refused++
			} else {
				sent++
			}
		}
		dn <- [2]int{sent, refused}
	}()
	return ta, dn
}

func floodRound(t *testing.T, mode string, set floodSet, n int) floodResult {
	dir := t.TempDir()
	file := filepath.Join(dir, "counts.json")
	var args []string
	switch mode {
	case "wrapper":
		args = []string{"--", helperBin, "sigcount", file}
	case "supervisor":
		cfg := writeFile(t, "tend.toml", fmt.Sprintf(`control_socket = ""
[services.counter]
command = [%q, "sigcount", %q]
`, helperBin, file))
		args = []string{"--config", cfg}
	}
	// tend alone on CPU 0, the sender on CPU 1: the set-up.
	p := start(t, spec{args: args, pid1: true, cpu: 0})
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(file + ".ready"); return err == nil }) {
		t.Fatalf("the counter never got ready\n%s", tail(p.err.String(), 20))
	}
	before, _ := readStats(p.pid)
	w := watchStats(p.pid, 20*time.Millisecond)
	start := time.Now()
	termAt, done := flood(p.pid, n, set, 1)
	sentAt := <-termAt
	var res floodResult
	totals := <-done
	res.sendTime = time.Since(start)
	res.sent, res.refused = totals[0], totals[1]
	var got struct {
		TermNs int64          `json:"term_ns"`
		Counts map[string]int `json:"counts"`
	}
	ok := waitFor(60*time.Second, func() bool {
		b, err := os.ReadFile(file)
		return err == nil && json.Unmarshal(b, &got) == nil
	})
	if !ok {
		res.lost = true
		p.signal(syscall.SIGKILL)
		w.end()
		return res
	}
	res.delay = time.Unix(0, got.TermNs).Sub(sentAt)
	for _, c := range got.Counts {
		res.forwarded += c
	}
	if code := p.wait(30 * time.Second); code < 0 {
		t.Errorf("tend did not exit after the TERM\n%s", tail(p.err.String(), 20))
	}
	last, _ := w.end()
	res.tendCPU = last.cpu - before.cpu
	return res
}

// TestSignalFloodTermNotLost: 100,000 signals with a TERM in the middle,
// tend pinned to one CPU, in rounds; the TERM must be acted on every time.
// The figure is the delay from kill(TERM) to the moment the child (which
// only a forwarded TERM or a shutdown reaches) received it.
func TestSignalFloodTermNotLost(t *testing.T) {
	const n = 100000
	for _, mode := range []string{"wrapper", "supervisor"} {
		for _, set := range []floodSet{mixedFlood(), realtimeFlood()} {
			t.Run(mode+"/"+set.name, func(t *testing.T) {
				var delays []time.Duration
				lost, refused, forwarded, sent := 0, 0, 0, 0
				var cpu time.Duration
				for r := range rounds() {
					res := floodRound(t, mode, set, n)
					if res.lost {
						lost++
						t.Errorf("round %d: TERM not acted on within 60s", r)
						continue
					}
					delays = append(delays, res.delay)
					refused += res.refused
					forwarded += res.forwarded
					sent += res.sent
					cpu += res.tendCPU
				}
				slices.Sort(delays)
				t.Logf("%s, flood over %s: %d rounds of %d signals, TERM lost %d times; load %s",
					mode, set.name, rounds(), n, lost, loadavg())
				if len(delays) > 0 {
					t.Logf("TERM delay: min %s, median %s, max %s", delays[0].Round(time.Microsecond),
						delays[len(delays)/2].Round(time.Microsecond), delays[len(delays)-1].Round(time.Microsecond))
					t.Logf("per round: %d signals accepted by the kernel, %d refused (real-time queue full), %d reached the child (coalescing), tend CPU %s",
						sent/len(delays), refused/len(delays), forwarded/len(delays), (cpu / time.Duration(len(delays))).Round(time.Millisecond))
				}
			})
		}
	}
}

// TestRealtimeCoalescing sends 95,000 x SIGRTMIN+3 to tend (one CPU) and
// counts what reaches the child: the kernel queues every one, tend's
// runtime (os/signal) keeps one pending bit per signal.
func TestRealtimeCoalescing(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "counts.json")
	p := start(t, spec{args: []string{"--", helperBin, "sigcount", file}, pid1: true, cpu: 0})
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(file + ".ready"); return err == nil }) {
		t.Fatal("the counter never got ready")
	}
	runtime.LockOSThread()
	var mask unix.CPUSet
	mask.Set(1)
	unix.SchedSetaffinity(0, &mask)
	sent := 0
	for range 95000 {
		if syscall.Kill(p.pid, 37) == nil {
			sent++
		}
	}
	runtime.UnlockOSThread()
	time.Sleep(2 * time.Second) // let tend work through the queue
	p.signal(syscall.SIGTERM)
	var got struct {
		Counts map[string]int `json:"counts"`
	}
	if !waitFor(60*time.Second, func() bool {
		b, err := os.ReadFile(file)
		return err == nil && json.Unmarshal(b, &got) == nil
	}) {
		t.Fatal("TERM not acted on")
	}
	p.wait(30 * time.Second)
	t.Logf("%d x SIGRTMIN+3 accepted by the kernel for tend, %d reached the child", sent, got.Counts["37"])
}
