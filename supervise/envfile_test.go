package supervise

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/config"
)

// envOfStart is the environment the fake was given at start i.
func (f *fakeLauncher) envOfStart(i int) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.envs) {
		return nil
	}
	return f.envs[i]
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEnvFileReadAtEachStart: a service's env file is read again at every
// start, so a change applies at the next start without a reload; a file
// that went bad makes that start fail like a program that cannot run
// (judged, restarted after the backoff, the reason naming file and line),
// and the start after the file is mended runs again.
func TestEnvFileReadAtEachStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.env")
	writeFile(t, path, "FOO=one\n")
	synctest.Test(t, func(t *testing.T) {
		svc := testService("svc") // fixed backoff of 10s
		svc.Env = []string{"FOO=tend", "PATH=/bin"}
		svc.EnvFiles = []config.EnvFile{{Path: path}}
		h := startHarness(t, svc)
		if env := h.fake.envOfStart(0); !slices.Equal(env, []string{"FOO=one", "PATH=/bin"}) {
			t.Fatalf("first start: env %q", env)
		}

		// Changed between two starts: the second sees the new value.
		writeFile(t, path, "FOO=two\n")
		h.fake.exit(h.fake.livePids()[0], unix.WaitStatus(1<<8))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if env := h.fake.envOfStart(1); !slices.Equal(env, []string{"FOO=two", "PATH=/bin"}) {
			t.Fatalf("second start: env %q", env)
		}

		// Gone bad: the start fails, and is tried again only after the backoff.
		writeFile(t, path, "FOO=two\nBAR=\"unclosed\n")
		h.fake.exit(h.fake.livePids()[0], unix.WaitStatus(1<<8))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		st, err := h.sup.Status("svc")
		if err != nil {
			t.Fatal(err)
		}
		wantReason := "cannot start: env_file: " + path + ":2: the double quote opened here is never closed"
		if st.State != Restarting || st.Reason != wantReason || st.LastExit == nil || st.LastExit.Code != 1 || st.PID != 0 {
			t.Fatalf("after a start with a bad env file: %+v\nwant restarting, reason %q, last exit code 1", st, wantReason)
		}
		if n := h.fake.startCount(); n != 2 {
			t.Fatalf("%d processes started, want 2: a bad env file starts nothing", n)
		}
		restarts := st.Restarts
		time.Sleep(9 * time.Second) // within the backoff: no new attempt
		synctest.Wait()
		if st, _ := h.sup.Status("svc"); st.Restarts != restarts {
			t.Fatalf("restarts %d → %d within the backoff: a failed start must wait for it", restarts, st.Restarts)
		}
		time.Sleep(time.Second) // the backoff is over: one more attempt, failed again
		synctest.Wait()
		if st, _ := h.sup.Status("svc"); st.Restarts != restarts+1 || st.State != Restarting {
			t.Fatalf("after the backoff: %+v, want restarts %d and restarting", st, restarts+1)
		}

		// Mended: the next start runs with it, and the reason is gone.
		writeFile(t, path, "FOO=three\n")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		st, _ = h.sup.Status("svc")
		if st.State != Running || st.Reason != "" {
			t.Fatalf("after the file was mended: %+v", st)
		}
		if env := h.fake.envOfStart(2); !slices.Equal(env, []string{"FOO=three", "PATH=/bin"}) {
			t.Fatalf("third start: env %q", env)
		}

		// A required file that is gone fails the start too.
		os.Remove(path)
		h.fake.exit(h.fake.livePids()[0], unix.WaitStatus(1<<8))
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if st, _ := h.sup.Status("svc"); st.State != Restarting || !strings.Contains(st.Reason, "open "+path+": no such file or directory") {
			t.Fatalf("after the file was removed: %+v", st)
		}
		h.shutdown(t)
	})
}

// TestExecCheckGetsTheRunsEnv: an exec check runs with the environment its
// service's run was started with, env files included.
func TestExecCheckGetsTheRunsEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.env")
	writeFile(t, path, "FOO=one\n")
	synctest.Test(t, func(t *testing.T) {
		svc := testService("svc")
		svc.Env = []string{"PATH=/bin"}
		svc.EnvFiles = []config.EnvFile{{Path: path}, {Path: path + ".missing", Optional: true}}
		svc.Health = &config.Check{Kind: config.CheckExec, Exec: []string{"probe"}, Interval: time.Second, Timeout: time.Second, Threshold: 3}
		h := startHarness(t, svc)
		writeFile(t, path, "FOO=changed\n") // after the start: not the run's
		time.Sleep(time.Second)
		synctest.Wait()
		if n := h.fake.startCount(); n != 2 {
			t.Fatalf("%d starts, want the service's and its check's", n)
		}
		if env := h.fake.envOfStart(1); !slices.Equal(env, []string{"FOO=one", "PATH=/bin"}) {
			t.Fatalf("the check's env %q", env)
		}
		h.shutdown(t)
	})
}

func TestWithVarReplaces(t *testing.T) {
	env := []string{"A=1", "NOTIFY_SOCKET=/run/systemd/notify", "NOTIFY_SOCKETX=keep", "Z=2"}
	got := withVar(env, "NOTIFY_SOCKET", "@tend/x")
	if want := []string{"A=1", "NOTIFY_SOCKETX=keep", "Z=2", "NOTIFY_SOCKET=@tend/x"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if env[1] != "NOTIFY_SOCKET=/run/systemd/notify" {
		t.Fatalf("changed in place: %q", env)
	}
}
