package signals

import (
	"os"
	"os/signal"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestUrgent(t *testing.T) {
	base := []unix.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGTERM, unix.SIGPWR}
	cases := []struct {
		name string
		rw   Rewrite
		want []unix.Signal
	}{
		{"plain", nil, base},
		{"a rewrite into TERM makes USR1 urgent", Rewrite{unix.SIGUSR1: unix.SIGTERM}, []unix.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGUSR1, unix.SIGTERM, unix.SIGPWR}},
		{"a real-time signal rewritten into HUP", Rewrite{40: unix.SIGHUP}, append(slices.Clone(base), 40)},
		// TERM rewritten away or dropped still keeps its own channel:
		// being urgent only means never dropped.
		{"TERM rewritten to QUIT", Rewrite{unix.SIGTERM: unix.SIGQUIT}, base},
		{"TERM dropped", Rewrite{unix.SIGTERM: 0}, base},
		// SIGPIPE is absorbed before the rewrite table applies.
		{"PIPE rewritten to TERM", Rewrite{unix.SIGPIPE: unix.SIGTERM}, base},
	}
	for _, c := range cases {
		got := Urgent(c.rw)
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: Urgent = %v, want %v", c.name, got, want)
		}
	}
}

// feed starts q on channels the test fills, standing in for os/signal.
func feed(t *testing.T, q *Queue) (urgent, rest chan os.Signal) {
	urgent, rest = make(chan os.Signal, 16), make(chan os.Signal, 4096)
	q.Start(urgent, rest)
	t.Cleanup(q.Stop)
	return urgent, rest
}

func receive(t *testing.T, q *Queue, n int) []unix.Signal {
	t.Helper()
	var got []unix.Signal
	for range n {
		select {
		case s := <-q.C():
			got = append(got, s.(unix.Signal))
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d signals came: %v", len(got), n, got)
		}
	}
	return got
}

// settle waits until the queue goroutine has taken everything fed to it.
func settle(urgent, rest chan os.Signal) {
	for len(urgent) > 0 || len(rest) > 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
}

func TestQueueDeliversUrgentFirstAndCoalesces(t *testing.T) {
	q := NewQueue([]unix.Signal{unix.SIGTERM, unix.SIGHUP})
	urgent, rest := feed(t, q)
	// Nobody reads yet: a flood of 3,000 signals over 30 kinds, then TERM
	// three times and HUP once.
	for i := range 3000 {
		rest <- unix.Signal(35 + i%30)
	}
	for _, s := range []unix.Signal{unix.SIGTERM, unix.SIGTERM, unix.SIGTERM, unix.SIGHUP} {
		urgent <- s
	}
	settle(urgent, rest)
	got := receive(t, q, 3+30)
	// Two TERMs are kept (the second one means "kill now"), the third is
	// coalesced; each real-time signal is kept once, in arrival order.
	want := []unix.Signal{unix.SIGTERM, unix.SIGTERM, unix.SIGHUP}
	for i := range 30 {
		want = append(want, unix.Signal(35+i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %v\nwant %v", got, want)
	}
	select {
	case s := <-q.C():
		t.Fatalf("more than expected: %v", s)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestQueueAfterDeliveryTakesTheSameSignalAgain(t *testing.T) {
	q := NewQueue(nil)
	_, rest := feed(t, q)
	for range 3 {
		rest <- unix.SIGUSR1
		if got := receive(t, q, 1); got[0] != unix.SIGUSR1 {
			t.Fatalf("got %v", got)
		}
	}
}

func TestQueueInjectedSignalGoesFirst(t *testing.T) {
	q := NewQueue(nil)
	urgent, rest := feed(t, q)
	rest <- unix.SIGUSR1
	rest <- unix.SIGUSR2
	settle(urgent, rest)
	q.Urgent(unix.SIGTERM)
	time.Sleep(10 * time.Millisecond)
	got := receive(t, q, 3)
	if want := []unix.Signal{unix.SIGTERM, unix.SIGUSR1, unix.SIGUSR2}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

// TestTermSurvivesAFloodFromTheKernel sends a real flood to the test
// process: 20,000 signals over USR1, USR2 and 30 real-time signals with a
// TERM in the middle, while nothing reads (tend's loop busy, or not
// scheduled on a loaded CPU). os/signal drops what does not fit in a
// channel; TERM has one of its own, so it must come through.
func TestTermSurvivesAFloodFromTheKernel(t *testing.T) {
	flood := []os.Signal{unix.SIGUSR1, unix.SIGUSR2}
	for s := unix.Signal(35); s < 65; s++ {
		flood = append(flood, s)
	}
	urgent, rest := make(chan os.Signal, urgentBuffer), make(chan os.Signal, restBuffer)
	signal.Notify(urgent, unix.SIGTERM)
	signal.Notify(rest, flood...)
	t.Cleanup(func() { signal.Stop(urgent); signal.Stop(rest) })
	for i := range 20000 {
		if i == 10000 {
			unix.Kill(os.Getpid(), unix.SIGTERM)
		}
		unix.Kill(os.Getpid(), flood[i%len(flood)].(unix.Signal))
	}
	time.Sleep(200 * time.Millisecond) // let os/signal hand out (or drop) the flood
	waiting := len(rest)               // a full channel: the rest of the flood was dropped
	q := NewQueue([]unix.Signal{unix.SIGTERM})
	q.Start(urgent, rest)
	t.Cleanup(q.Stop)
	n := 0
	for {
		select {
		case s := <-q.C():
			if s == unix.SIGTERM {
				t.Logf("TERM delivered first, ahead of the %d others that fitted in their channel", waiting)
				if n != 0 {
					t.Errorf("TERM came after %d others", n)
				}
				return
			}
			n++
		case <-time.After(5 * time.Second):
			t.Fatalf("TERM lost in the flood (%d other signals delivered)", n)
		}
	}
}
