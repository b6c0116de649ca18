package supervise

import (
	"sync"
	"time"
)

// Kind is what a Happening is about, as `tend ctl events` and GET
// /v1/events show it. (A lifecycle Event is something else: an input of the
// table in lifecycle.go.)
type Kind string

const (
	KindState    Kind = "state"    // a service changed state
	KindReady    Kind = "ready"    // a service became ready, or stopped being ready
	KindHealth   Kind = "health"   // a service's health check failed or passes again
	KindReload   Kind = "reload"   // a reload was applied, or refused
	KindShutdown Kind = "shutdown" // a step of the graceful shutdown
)

// Happening is one entry of the event stream. Field names are stable: they
// are the JSON of GET /v1/events.
type Happening struct {
	Time    time.Time `json:"time"`
	Kind    Kind      `json:"kind"`
	Service string    `json:"service,omitempty"`
	From    State     `json:"from,omitempty"`
	To      State     `json:"to,omitempty"`
	Ready   *bool     `json:"ready,omitempty"`
	Healthy *bool     `json:"healthy,omitempty"`
	PID     int       `json:"pid,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// Events fans happenings out to subscribers. Publishing never blocks: a
// subscriber whose buffer is full is dropped (its channel closed), so a
// stuck client can never slow the supervisor.
type Events struct {
	mu   sync.Mutex
	subs map[chan Happening]bool
}

// eventBuffer is how far a subscriber may lag before it is dropped.
const eventBuffer = 1024

// NewEvents makes an event stream with no subscriber.
func NewEvents() *Events { return &Events{subs: map[chan Happening]bool{}} }

// Subscribe returns a stream of happenings from now on, and the function
// that ends it.
func (e *Events) Subscribe() (<-chan Happening, func()) {
	ch := make(chan Happening, eventBuffer)
	e.mu.Lock()
	e.subs[ch] = true
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.subs[ch] {
			delete(e.subs, ch)
			close(ch)
		}
	}
}

// Publish hands h to every subscriber; it never blocks.
func (e *Events) Publish(h Happening) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- h:
		default:
			delete(e.subs, ch)
			close(ch)
		}
	}
}

func (s *Supervisor) emit(h Happening) {
	h.Time = s.now()
	s.events.Publish(h)
}

func boolPtr(b bool) *bool { return &b }
