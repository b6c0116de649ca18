package supervise

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"
)

func TestLogsKeepRecentLinesWithinBounds(t *testing.T) {
	l := NewLogs(8 << 10)
	at := time.Unix(1000, 0)
	for i := range 10000 {
		stream := "stdout"
		if i%2 == 1 {
			stream = "stderr"
		}
		l.Add("svc", stream, at.Add(time.Duration(i)), fmt.Appendf(nil, "line %05d", i))
	}
	l.Add("other", "stdout", at.Add(5000), []byte("other line"))
	if r := l.rings["svc"]; r.used > 8<<10 || len(r.buf) != 8<<10 {
		t.Fatalf("ring holds %d bytes in %d, more than its 8 KiB", r.used, len(r.buf))
	}
	got := l.Recent("svc", 3)
	if len(got) != 3 || got[2].Line != "line 09999" || got[1].Line != "line 09998" || got[2].Stream != "stderr" || got[1].Stream != "stdout" {
		t.Fatalf("last three: %+v", got)
	}
	all := l.Recent("svc", 0)
	if len(all) < 8<<10/(recordHead+10)-1 || len(all) > 8<<10/(recordHead+10) {
		t.Fatalf("kept %d lines of 14 bytes in an 8 KiB ring", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Line <= all[i-1].Line {
			t.Fatalf("out of order at %d: %q after %q", i, all[i].Line, all[i-1].Line)
		}
	}
	merged := l.Recent("", 0)
	if len(merged) != len(all)+1 {
		t.Fatalf("all services: %d lines, want %d", len(merged), len(all)+1)
	}
	long := strings.Repeat("x", 3*maxKept)
	l.Add("svc", "stdout", at.Add(time.Hour), []byte(long))
	if last := l.Recent("svc", 1)[0].Line; len(last) != maxKept {
		t.Fatalf("a long line kept as %d bytes, want %d", len(last), maxKept)
	}
	l.Forget("svc")
	if len(l.Recent("svc", 0)) != 0 {
		t.Fatal("a forgotten service's lines are still there")
	}
}

// TestLogSeqIsOneCounterForEveryService: every line gets the next Seq as
// it is kept, whichever service wrote it and whatever its time; the JSON
// of a line has it.
func TestLogSeqIsOneCounterForEveryService(t *testing.T) {
	l := NewLogs(0)
	at := time.Unix(5000, 0)
	for i := range 10 {
		l.Add([]string{"a", "b"}[i%2], "stdout", at.Add(-time.Duration(i)*time.Minute), fmt.Appendf(nil, "%d", i))
	}
	for i, line := range l.Recent("", 0) {
		if line.Seq != uint64(i+1) || line.Line != fmt.Sprint(i) {
			t.Fatalf("line %d: seq %d %q; want seq %d %q", i, line.Seq, line.Line, i+1, fmt.Sprint(i))
		}
	}
	if b := l.Recent("b", 1); len(b) != 1 || b[0].Seq != 10 {
		t.Fatalf("b's last line: %+v, want seq 10", b)
	}
	b, _ := json.Marshal(l.Recent("a", 1)[0])
	if !strings.Contains(string(b), `"seq":9,`) {
		t.Fatalf("no seq in the JSON of a line: %s", b)
	}
}

// pendingOf is what f holds, as the pumps left it.
func pendingOf(f *Follower) (lines, capacity, bytes int, following bool) {
	f.logs.mu.Lock()
	defer f.logs.mu.Unlock()
	return len(f.pending), cap(f.pending), f.bytes, f.logs.followers[f]
}

// woken tells whether f's Ready is signalled, taking the signal.
func woken(f *Follower) bool {
	select {
	case <-f.Ready():
		return true
	default:
		return false
	}
}

// TestPromptFollowerTakesABurstWhole: a follower whose reader takes
// promptly is not dropped by a burst a pump adds without a pause. With a
// channel of 1,024 lines a follower was dropped after 1,024 lines of any
// burst, however fast its reader; now it takes the whole burst at once.
func TestPromptFollowerTakesABurstWhole(t *testing.T) {
	cases := []struct {
		name   string
		follow string // "" for every service
		lines  int    // of svc, in one burst
		others bool   // another service's lines in between
	}{
		{"one line", "svc", 1, false},
		{"5,000 lines", "svc", 5000, false},
		{"5,000 among another service's", "svc", 5000, true}, // not charged for those
		{"every service, 5,000 of each", "", 5000, true},
		{"the whole bound", "svc", followLines, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLogs(0)
			f := l.Follow(c.follow)
			defer f.Stop()
			at := time.Now()
			for i := range c.lines {
				l.Add("svc", "stdout", at, fmt.Appendf(nil, "%d", i)) // must not block
				if c.others {
					l.Add("other", "stderr", at, fmt.Appendf(nil, "other %d", i))
				}
			}
			if !woken(f) {
				t.Fatal("a burst did not wake the follower")
			}
			got, behind := f.Take()
			want := c.lines
			if c.others && c.follow == "" {
				want *= 2
			}
			if behind != 0 || len(got) != want {
				t.Fatalf("took %d lines, %d behind; want all %d, none behind", len(got), behind, want)
			}
			n := 0
			for i, ll := range got {
				if i > 0 && ll.Seq <= got[i-1].Seq {
					t.Fatalf("line %d: seq %d after %d", i, ll.Seq, got[i-1].Seq)
				}
				if ll.Service == "svc" {
					if ll.Line != fmt.Sprint(n) {
						t.Fatalf("svc's line %d is %q", n, ll.Line)
					}
					n++
				}
			}
			// All was taken: the next line comes alone.
			if lines, _, _, following := pendingOf(f); lines != 0 || !following {
				t.Fatalf("%d lines left after a take, following %v", lines, following)
			}
			l.Add("svc", "stdout", at, []byte("next"))
			if got, behind := f.Take(); len(got) != 1 || got[0].Line != "next" || behind != 0 {
				t.Fatalf("after the burst: %d lines, %d behind", len(got), behind)
			}
		})
	}
}

// TestFollowerReadsInItsOwnGoroutine: a reader waiting on Ready in its
// own goroutine, as the API's is, gets bursts whole and in order. They
// stay under the bound in all, so however the two are scheduled none is
// dropped.
func TestFollowerReadsInItsOwnGoroutine(t *testing.T) {
	const bursts, burst = 10, 5000
	l := NewLogs(0)
	f := l.Follow("svc")
	defer f.Stop()
	type result struct {
		lines  []LogLine
		takes  int
		behind int
	}
	done := make(chan result)
	go func() {
		var r result
		for len(r.lines) < bursts*burst && r.behind == 0 {
			<-f.Ready()
			lines, behind := f.Take()
			r.lines, r.behind = append(r.lines, lines...), behind
			r.takes++
		}
		done <- r
	}()
	for b := range bursts {
		for i := range burst {
			l.Add("svc", "stdout", time.Now(), fmt.Appendf(nil, "%d", b*burst+i))
		}
		runtime.Gosched()
	}
	r := <-done
	t.Logf("%d lines in %d takes", len(r.lines), r.takes)
	if r.behind != 0 || len(r.lines) != bursts*burst {
		t.Fatalf("took %d lines, %d behind; want %d", len(r.lines), r.behind, bursts*burst)
	}
	for i, ll := range r.lines {
		if ll.Line != fmt.Sprint(i) {
			t.Fatalf("line %d is %q", i, ll.Line)
		}
	}
}

// TestStuckFollowerIsDroppedAtItsBound: a follower that never reads holds
// at most followLines lines and followBytes of their text; the line past
// either drops it, its lines are let go, and its reader is told how far
// behind it was. Another follower of the same lines is not held up.
func TestStuckFollowerIsDroppedAtItsBound(t *testing.T) {
	cases := []struct {
		name string
		line string // every line
		fit  int    // lines held when the next one does not fit
	}{
		{"short lines", "x", followLines},
		{"empty lines", "", followLines},
		{"lines of 1,000 bytes", strings.Repeat("x", 1000), followBytes / 1000},
		{"the longest lines", strings.Repeat("x", MaxLine), followBytes / MaxLine},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLogs(0)
			stuck := l.Follow("svc")
			fast := l.Follow("")
			defer fast.Stop()
			var maxLines, maxCap, maxBytes, fastGot int
			for i := range c.fit + 10 {
				l.Add("svc", "stdout", time.Now(), []byte(c.line)) // must not block
				lines, capacity, bytes, following := pendingOf(stuck)
				maxLines, maxCap, maxBytes = max(maxLines, lines), max(maxCap, capacity), max(maxBytes, bytes)
				if following != (i < c.fit) {
					t.Fatalf("after %d lines: following %v, want %v", i+1, following, i < c.fit)
				}
				got, behind := fast.Take()
				if len(got) != 1 || behind != 0 {
					t.Fatalf("line %d: the fast follower took %d, %d behind", i+1, len(got), behind)
				}
				fastGot++
			}
			t.Logf("held at most %d lines (slice capacity %d), %d bytes; dropped at line %d", maxLines, maxCap, maxBytes, c.fit+1)
			if maxLines != c.fit || maxCap > followLines || maxBytes > followBytes {
				t.Fatalf("held at most %d lines (capacity %d), %d bytes; want %d, at most %d and %d",
					maxLines, maxCap, maxBytes, c.fit, followLines, followBytes)
			}
			if lines, capacity, _, _ := pendingOf(stuck); lines != 0 || capacity != 0 {
				t.Fatalf("a dropped follower still holds %d lines (capacity %d)", lines, capacity)
			}
			if !woken(stuck) {
				t.Fatal("the drop did not wake the reader")
			}
			for range 2 { // and it stays told, with nothing more
				if got, behind := stuck.Take(); len(got) != 0 || behind != c.fit+1 {
					t.Fatalf("the dropped follower took %d lines, %d behind; want none, %d", len(got), behind, c.fit+1)
				}
			}
			if fastGot != c.fit+10 {
				t.Fatalf("the fast follower got %d lines, want %d", fastGot, c.fit+10)
			}
		})
	}
}

// TestFollowerStopAndDrop: Stop is idempotent, comes before or after a
// drop, and a stopped follower never says it was dropped.
func TestFollowerStopAndDrop(t *testing.T) {
	add := func(l *Logs, _ *Follower) { l.Add("svc", "stdout", time.Now(), []byte("x")) }
	flood := func(l *Logs, _ *Follower) {
		for range followLines + 1 {
			l.Add("svc", "stdout", time.Now(), []byte("x"))
		}
	}
	stop := func(_ *Logs, f *Follower) { f.Stop() }
	type step func(*Logs, *Follower)
	cases := []struct {
		name   string
		steps  []step
		behind int // what Take says at the end
	}{
		{"stop twice", []step{add, stop, stop}, 0},
		{"stop with lines held", []step{add, add, add, stop}, 0},
		{"stop after a drop", []step{flood, stop}, 0},
		{"a flood after stop", []step{stop, flood}, 0},
		{"stop twice after a drop", []step{flood, stop, stop, add}, 0},
		{"dropped, not stopped", []step{flood, add}, followLines + 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLogs(0)
			f := l.Follow("svc")
			for _, s := range c.steps {
				s(l, f)
			}
			if got, behind := f.Take(); len(got) != 0 || behind != c.behind {
				t.Fatalf("took %d lines, %d behind; want none, %d", len(got), behind, c.behind)
			}
			if lines, _, _, following := pendingOf(f); lines != 0 || following {
				t.Fatalf("holds %d lines, following %v", lines, following)
			}
			f.Stop()
			if _, behind := f.Take(); behind != 0 {
				t.Fatalf("%d behind after Stop", behind)
			}
		})
	}
}

func TestEventsStreamStateChangesAndDropStuckClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, testService("svc"))
		events, stop := h.sup.Events().Subscribe()
		defer stop()
		stuck, _ := h.sup.Events().Subscribe()
		if err := h.sup.Operate("svc", CmdStop); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		var got []string
		for len(events) > 0 {
			e := <-events
			switch e.Kind {
			case KindState:
				got = append(got, fmt.Sprintf("state %s %s→%s", e.Service, e.From, e.To))
			case KindReady:
				got = append(got, fmt.Sprintf("ready %s %v", e.Service, *e.Ready))
			}
		}
		want := []string{"state svc running→stopping", "ready svc false", "state svc stopping→stopped"}
		if strings.Join(got, "; ") != strings.Join(want, "; ") {
			t.Fatalf("events %q, want %q", got, want)
		}
		for range eventBuffer {
			h.sup.Do(func() { h.sup.emit(Happening{Kind: KindReload}) })
		}
		n := 0
		for range stuck {
			n++
		}
		if n != eventBuffer {
			t.Fatalf("the stuck client got %d events before it was dropped, want %d", n, eventBuffer)
		}
		h.shutdown(t)
	})
}

func TestMetricsExposition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := startHarness(t, testService("web"), testService("db"))
		h.fake.exit(h.pid("db"), unix.WaitStatus(3<<8))
		synctest.Wait()
		time.Sleep(11 * time.Second) // the backoff: db runs again
		synctest.Wait()
		b, err := h.sup.Metrics()
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, want := range []string{
			"# TYPE tend_service_state gauge",
			`tend_service_state{service="web",state="running"} 1`,
			`tend_service_state{service="web",state="stopped"} 0`,
			`tend_service_restarts_total{service="db"} 1`,
			`tend_service_restarts_total{service="web"} 0`,
			`tend_service_last_exit_code{service="db"} 3`,
			`tend_service_ready{service="db"} 1`,
			"tend_reloads_total 0",
		} {
			if !strings.Contains(text, want+"\n") {
				t.Errorf("no %q in\n%s", want, text)
			}
		}
		if strings.Contains(text, `tend_service_last_exit_code{service="web"}`) {
			t.Error("a service that never exited has a last exit code")
		}
		h.shutdown(t)
	})
}

// TestRingAgreesWithASlice checks the circular buffer against the obvious
// model, a list of records dropped from the front while over the size,
// with lines of every length wrapping round the end.
func TestRingAgreesWithASlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for _, size := range []int{MinLogBytes, 5000, 16 << 10} {
		r := &ring{max: size}
		var model []LogLine
		modelBytes := 0
		for i := range 5000 {
			n := rng.IntN(200)
			if rng.IntN(50) == 0 {
				n = rng.IntN(3 * maxKept)
			}
			line := strings.Repeat(string(rune('a'+i%26)), n)
			at := time.Unix(0, int64(i))
			r.add(uint64(i+1), at, "stdout", []byte(line))
			kept := line[:min(len(line), maxKept, size-recordHead)]
			model = append(model, LogLine{Seq: uint64(i + 1), Time: at, Service: "s", Stream: "stdout", Line: kept})
			modelBytes += recordHead + len(kept)
			for modelBytes > size {
				modelBytes -= recordHead + len(model[0].Line)
				model = model[1:]
			}
			if i%97 == 0 || i == 4999 {
				got := r.appendLines(nil, "s")
				if len(got) != len(model) {
					t.Fatalf("size %d, step %d: %d lines kept, want %d", size, i, len(got), len(model))
				}
				for j := range got {
					if got[j] != model[j] {
						t.Fatalf("size %d, step %d, line %d: %+v, want %+v", size, i, j, got[j], model[j])
					}
				}
			}
		}
		r.free()
	}
}

// appendLines decodes every record of a ring, oldest first.
func (r *ring) appendLines(out []LogLine, service string) []LogLine {
	r.each(func(_ uint64, off int) { out = append(out, r.line(off, service)) })
	return out
}
