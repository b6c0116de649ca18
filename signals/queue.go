package signals

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/guard"
)

// actedOn are the signals whose meaning tend must never miss: TERM and INT
// (shutdown, or a VM's power-off and reboot), HUP (reload) and PWR (a VM's
// power-off). In wrapper mode they are forwarded, and still must not be
// lost behind a flood of others.
var actedOn = []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGPWR}

// Urgent is every received signal that must never be dropped: the ones tend
// acts on, and any that the rewrite table turns into one of them (-r
// USR1:TERM makes USR1 a shutdown).
func Urgent(rw Rewrite) []unix.Signal {
	var list []unix.Signal
	for _, s := range Handled() {
		sig := s.(unix.Signal)
		if Decide(Wrapper, sig) == Absorb {
			continue // SIGCHLD, SIGPIPE: never acted on
		}
		to, keep := rw.Apply(sig)
		if isActedOn(sig) || (keep && isActedOn(to)) {
			list = append(list, sig)
		}
	}
	return list
}

func isActedOn(sig unix.Signal) bool {
	for _, a := range actedOn {
		if sig == a {
			return true
		}
	}
	return false
}

// How many of one signal may wait in a Queue. Two of an urgent signal: a
// second TERM during a shutdown means "kill everything now". One of any
// other: that is what the runtime keeps too (os/signal holds one pending
// bit per signal), so nothing the kernel would have delivered is lost by
// it, and the queue stays bounded by the number of signals.
const (
	urgentPending = 2
	restPending   = 1
)

// urgentBuffer and restBuffer are os/signal's channels. The queue goroutine
// empties them at once; they only have to cover the moments it is not
// scheduled. os/signal drops a signal whose channel is full: that can
// happen to the flood in rest, never to an urgent signal behind it.
const (
	urgentBuffer = 16
	restBuffer   = 128
)

// Queue delivers received signals to one channel, urgent ones first. It
// reads os/signal's channels as fast as they fill and keeps what the
// consumer has not taken yet, coalesced, so a flood costs a bounded queue
// and cannot hold up a TERM behind it.
type Queue struct {
	urgent [Max + 1]bool
	out    chan os.Signal
	inject chan unix.Signal
	stop   chan struct{}

	// Owned by the queue goroutine.
	first, rest []unix.Signal
	pending     [Max + 1]uint8
}

// NewQueue returns a queue whose urgent signals are those listed.
func NewQueue(urgent []unix.Signal) *Queue {
	q := &Queue{
		out:    make(chan os.Signal),
		inject: make(chan unix.Signal, urgentBuffer),
		stop:   make(chan struct{}),
	}
	for _, s := range urgent {
		if s > 0 && s <= Max {
			q.urgent[s] = true
		}
	}
	return q
}

// C delivers the signals, one at a time, urgent ones first.
func (q *Queue) C() <-chan os.Signal { return q.out }

// Urgent queues sig ahead of every non-urgent signal. It is for signals
// that tend makes up itself (a VM's power-off request becomes SIGTERM) and
// never drops one that matters; it blocks only for the instant the queue
// goroutine needs to take it.
func (q *Queue) Urgent(sig unix.Signal) {
	select {
	case q.inject <- sig:
	case <-q.stop:
	}
}

// Subscribe routes SIGCHLD to chld (a one-slot channel is enough: a pending
// notification makes the reaper pass that catches every later exit too) and
// every other handled signal to q: the urgent ones through a channel of
// their own, so that os/signal can never drop one for lack of room behind
// a flood of others. It starts the queue's goroutine.
//
// Catching SIGPIPE, SIGSEGV, SIGBUS, SIGFPE and SIGILL here is what keeps
// tend alive when they are sent with kill or when its output pipe closes:
// the runtime only crashes on the synchronous ones, which a fault in tend
// itself would raise.
//
// What an early subscription (Early, made in a package init function)
// already carries is read from its channels and not subscribed again: a
// signal sent to two channels would be received twice.
func (q *Queue) Subscribe(chld chan<- os.Signal, early Early) {
	urgent := make(chan os.Signal, urgentBuffer)
	rest := make(chan os.Signal, restBuffer)
	var u, r []os.Signal
	for _, s := range Handled() {
		switch sig := s.(unix.Signal); {
		case sig == unix.SIGCHLD, early.carries(sig):
		case q.urgent[sig]:
			u = append(u, s)
		default:
			r = append(r, s)
		}
	}
	if chld != nil {
		signal.Notify(chld, unix.SIGCHLD)
	}
	if len(u) > 0 {
		signal.Notify(urgent, u...)
	}
	signal.Notify(rest, r...)
	q.start(inputs{urgent, rest, early.Acted, early.Fatal})
}

// Early is a subscription made before the queue's: early.Acted carries
// Signals' acted-on members, early.Fatal the others. The zero Early is none.
type Early struct {
	Acted, Fatal <-chan os.Signal
	Signals      []os.Signal
}

func (e Early) carries(sig unix.Signal) bool {
	for _, s := range e.Signals {
		if s == sig {
			return true
		}
	}
	return false
}

// inputs are the channels the queue goroutine reads. The early ones are
// read like the others: which of their signals is urgent is the queue's
// decision (add), whichever channel brought it.
type inputs struct {
	urgent, rest, earlyActed, earlyFatal <-chan os.Signal
}

// Start runs the queue's goroutine on the given inputs (a test's).
func (q *Queue) Start(urgent, rest <-chan os.Signal) { q.start(inputs{urgent: urgent, rest: rest}) }

func (q *Queue) start(in inputs) {
	guard.Go("signal queue", func() { q.run(in) })
}

// Stop ends the queue's goroutine (tests; tend never unsubscribes).
func (q *Queue) Stop() { close(q.stop) }

func (q *Queue) run(in inputs) {
	for {
		// Urgent ones first: select picks at random among ready cases,
		// which could hand out a signal of the flood while a TERM waits
		// in its channel.
		select {
		case s := <-in.urgent:
			q.add(s.(unix.Signal))
			continue
		case s := <-in.earlyActed:
			q.add(s.(unix.Signal))
			continue
		default:
		}
		var out chan<- os.Signal
		var head os.Signal
		if sig, ok := q.head(); ok {
			out, head = q.out, sig
		}
		select {
		case s := <-in.urgent:
			q.add(s.(unix.Signal))
		case s := <-in.earlyActed:
			q.add(s.(unix.Signal))
		case s := <-in.rest:
			q.add(s.(unix.Signal))
		case s := <-in.earlyFatal:
			q.add(s.(unix.Signal))
		case s := <-q.inject:
			q.put(s, true)
		case out <- head:
			q.pop()
		case <-q.stop:
			return
		}
	}
}

func (q *Queue) add(sig unix.Signal) { q.put(sig, sig > 0 && sig <= Max && q.urgent[sig]) }

// put queues sig unless as many of it wait already.
func (q *Queue) put(sig unix.Signal, urgent bool) {
	if sig <= 0 || sig > Max {
		return
	}
	limit := uint8(restPending)
	if urgent {
		limit = urgentPending
	}
	if q.pending[sig] >= limit {
		return // coalesced with one still waiting
	}
	q.pending[sig]++
	if urgent {
		q.first = append(q.first, sig)
	} else {
		q.rest = append(q.rest, sig)
	}
}

func (q *Queue) head() (unix.Signal, bool) {
	if len(q.first) > 0 {
		return q.first[0], true
	}
	if len(q.rest) > 0 {
		return q.rest[0], true
	}
	return 0, false
}

// pop removes the head that was just delivered.
func (q *Queue) pop() {
	list := &q.rest
	if len(q.first) > 0 {
		list = &q.first
	}
	sig := (*list)[0]
	q.pending[sig]--
	*list = append((*list)[:0], (*list)[1:]...)
}
