package supervise

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tend-init/tend/config"
)

// fileCheck is a check that passes while path exists: the tests below
// make it fail and pass by removing and creating the file.
func fileCheck(path string, health bool) *config.Check {
	c := &config.Check{Kind: config.CheckFile, Target: path, Interval: time.Second, Timeout: time.Second, Threshold: 2}
	if health {
		c.OnFailure = config.FailRestart
	} else {
		c.Period = 2 * time.Second
	}
	return c
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHealthOnFailure: what a health check that failed threshold times
// does, by on_failure. restart stops the run (the policy starts it again);
// ignore only reports it, and reports the pass again; shutdown ends tend
// with status 1.
func TestHealthOnFailure(t *testing.T) {
	cases := []struct {
		on         config.OnFailure
		wantStarts int  // after the failure and the backoff
		wantEnded  bool // tend shut down
	}{
		{config.FailRestart, 2, false},
		{config.FailIgnore, 1, false},
		{config.FailShutdown, 1, true},
	}
	for _, c := range cases {
		t.Run(string(c.on), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "healthy")
			touch(t, path)
			synctest.Test(t, func(t *testing.T) {
				web := testService("web")
				web.Backoff.Delay = time.Second
				web.Health = fileCheck(path, true)
				web.Health.OnFailure = c.on
				h := startHarness(t, web)
				events, stop := h.sup.Events().Subscribe()
				defer stop()
				time.Sleep(5 * time.Second) // passing
				if n := h.fake.startCount(); n != 1 {
					t.Fatalf("%d starts while healthy", n)
				}
				os.Remove(path)
				time.Sleep(3500 * time.Millisecond) // two failures, then the reaction and the backoff
				synctest.Wait()
				if c.wantEnded {
					select {
					case code := <-h.done:
						if code != 1 || h.sup.Ended() != EndCheck {
							t.Fatalf("tend ended with %d (%s), want 1 (%s)", code, h.sup.Ended(), EndCheck)
						}
					case <-time.After(time.Minute):
						t.Fatal("tend did not shut down")
					}
					return
				}
				if n := h.fake.startCount(); n != c.wantStarts {
					t.Errorf("%d starts after the check failed, want %d", n, c.wantStarts)
				}
				var healthy bool
				h.sup.Do(func() { healthy = h.sup.services["web"].healthy })
				if c.on == config.FailIgnore {
					if healthy || h.state("web") != Running {
						t.Errorf("on_failure = ignore: healthy %v, %s; want unhealthy and running", healthy, h.state("web"))
					}
					touch(t, path)
					time.Sleep(1500 * time.Millisecond)
					synctest.Wait()
					h.sup.Do(func() { healthy = h.sup.services["web"].healthy })
					if !healthy || h.fake.startCount() != 1 {
						t.Errorf("after the check passes again: healthy %v, %d starts", healthy, h.fake.startCount())
					}
					var saw []string
				drain:
					for {
						select {
						case e := <-events:
							if e.Kind == KindHealth {
								saw = append(saw, e.Reason)
							}
						default:
							break drain
						}
					}
					if len(saw) != 2 || saw[1] != "passes again" {
						t.Errorf("health events %q, want unhealthy then passes again", saw)
					}
				}
				h.shutdown(t)
			})
		})
	}
}

// TestReadinessComesAndGoes: once ready, the readiness check keeps
// probing every period; threshold failures in a row make the service not
// ready (an event says so), a pass makes it ready again, and nothing is
// stopped or restarted.
func TestReadinessComesAndGoes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ready")
	touch(t, path)
	synctest.Test(t, func(t *testing.T) {
		web := testService("web")
		web.Ready = fileCheck(path, false)
		h := startHarness(t, web)
		events, stop := h.sup.Events().Subscribe()
		defer stop()
		ready := func() bool {
			var r bool
			h.sup.Do(func() { r = h.sup.services["web"].isReady() })
			return r
		}
		synctest.Wait()
		steps := []struct {
			exists bool
			wait   time.Duration
			want   bool
		}{
			{true, 100 * time.Millisecond, true},
			{false, 2500 * time.Millisecond, true}, // one failure: threshold is 2
			{false, 2 * time.Second, false},        // the second
			{false, 10 * time.Second, false},       // stays not ready, not stopped
			{true, 2 * time.Second, true},          // one pass is enough
			{true, 10 * time.Second, true},
		}
		for i, st := range steps {
			if st.exists {
				touch(t, path)
			} else {
				os.Remove(path)
			}
			time.Sleep(st.wait)
			synctest.Wait()
			if got := ready(); got != st.want {
				t.Fatalf("step %d: ready %v, want %v", i, got, st.want)
			}
		}
		if n := h.fake.startCount(); n != 1 || h.state("web") != Running {
			t.Errorf("%d starts, %s: readiness must not stop or restart anything", n, h.state("web"))
		}
		var saw []bool
	drain:
		for {
			select {
			case e := <-events:
				if e.Kind == KindReady && e.Ready != nil {
					saw = append(saw, *e.Ready)
				}
			default:
				break drain
			}
		}
		if len(saw) != 2 || saw[0] || !saw[1] {
			t.Errorf("ready events %v, want [false true]", saw)
		}
		h.shutdown(t)
	})
}

// TestAutostartFalse: a service with autostart = false is idle and says
// why; the services that depend on it wait; a reload keeps it idle; an
// operator's start starts it, and then its dependants.
func TestAutostartFalse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := testService("db")
		db.Manual = true
		web := testService("web")
		web.DependsOn = []string{"db"}
		other := testService("other")
		h := startHarness(t, db, web, other)
		time.Sleep(time.Minute)
		synctest.Wait()
		if h.state("db") != Idle || h.state("web") != Idle || h.state("other") != Running {
			t.Fatalf("db %s, web %s, other %s; want idle, idle, running", h.state("db"), h.state("web"), h.state("other"))
		}
		var why string
		h.sup.Do(func() { why = h.sup.services["db"].describe() })
		if !strings.Contains(why, "autostart = false") {
			t.Errorf("db is described as %q; want it to say autostart = false", why)
		}
		ok, reasons, _ := h.sup.Health()
		if ok || len(reasons) != 1 || !strings.Contains(reasons[0], "web") {
			t.Errorf("health %v %q: want only web, which waits for db, named (db is meant not to run)", ok, reasons)
		}
		if st, _ := h.sup.Status("db"); !strings.Contains(st.Reason, "autostart = false") {
			t.Errorf("db's status reason %q", st.Reason)
		}
		if err := h.sup.Apply(testConfig(db, web, other)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if h.state("db") != Idle || h.fake.startCount() != 1 {
			t.Fatalf("after a reload: db %s, %d starts", h.state("db"), h.fake.startCount())
		}
		if err := h.sup.Operate("db", CmdStart); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if h.state("db") != Running || h.state("web") != Running {
			t.Fatalf("after tend ctl start db: db %s, web %s", h.state("db"), h.state("web"))
		}
		h.shutdown(t)
	})
}
