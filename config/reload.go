package config

import "reflect"

// Equal reports whether s and old define the same service, so that a reload
// can leave it alone. A Loader hands an unchanged service back as the same
// *Service, which needs no deeper look.
func (s *Service) Equal(old *Service) bool {
	return s == old || reflect.DeepEqual(s, old)
}

// RestartSettingsOnlyChanged reports whether s differs from old, but only in
// the settings the restart state machine reads at the next exit (restart,
// backoff, crash_loop, min_uptime, max_restarts, success_exit_codes), and
// autostart, which only matters before a first start. Such a change applies
// without restarting the service (SPEC section 5).
func (s *Service) RestartSettingsOnlyChanged(old *Service) bool {
	if s == nil || old == nil || s.Equal(old) {
		return false
	}
	c := *s
	c.Restart = old.Restart
	c.Backoff = old.Backoff
	c.CrashLoop = old.CrashLoop
	c.MinUptime = old.MinUptime
	c.MaxRestarts = old.MaxRestarts
	c.SuccessExitCodes = old.SuccessExitCodes
	c.Manual = old.Manual
	return c.Equal(old)
}
