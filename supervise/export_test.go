package supervise

import "github.com/tend-init/tend/config"

// Seams for the tests of this package: ways in that production code has no
// use for.

// Do runs fn on the supervisor's goroutine and waits for it; false when the
// supervisor did not run fn.
func (s *Supervisor) Do(fn func()) bool {
	_, err := call(s, func() struct{} { fn(); return struct{}{} })
	return err == nil
}

// Apply applies an already loaded config, as a reload does.
func (s *Supervisor) Apply(cfg *config.Config) error {
	r, err := call(s, func() error { _, err := s.apply(cfg); return err })
	if err != nil {
		return err
	}
	return r
}

// Events is the supervisor's event stream.
func (s *Supervisor) Events() *Events { return s.events }

// Ended says why Run returned; valid once it has.
func (s *Supervisor) Ended() EndReason { return s.life.Reason }
