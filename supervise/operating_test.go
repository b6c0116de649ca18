package supervise

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

func TestSlowFollowerIsDroppedNotWaitedFor(t *testing.T) {
	l := NewLogs(0)
	fast, stopFast := l.Follow("svc")
	defer stopFast()
	slow, _ := l.Follow("")
	done := make(chan struct{})
	go func() {
		for range fast {
		}
		close(done)
	}()
	for i := range followBuffer + 10 {
		l.Add("svc", "stdout", time.Now(), fmt.Appendf(nil, "%d", i)) // must not block
	}
	n := 0
	for range slow {
		n++
	}
	if n != followBuffer || cap(slow) != followBuffer {
		t.Fatalf("the slow follower got %d lines before it was dropped, want %d, its capacity (%d)", n, followBuffer, cap(slow))
	}
	stopFast()
	<-done
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
