package supervise

import (
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/sirupsen/logrus"

	"github.com/tend-init/tend/config"
)

// A reload through a config.Loader over an include tree: an invalid
// included file changes nothing (and says which file and line); once it
// is fixed, only the service it defines is restarted.
func TestReloadIncludedFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	svc := func(name, cmd string) string {
		return "[services." + name + "]\ncommand = \"" + cmd + "\"\noutput = \"inherit\"\nbackoff = { delay = \"10s\" }\n"
	}
	write("tend.toml", "control_socket = \"\"\ninclude = [\"conf.d/*.toml\"]\n"+svc("base", "base"))
	write("conf.d/a.toml", svc("a", "a"))
	write("conf.d/b.toml", svc("b", "b"))
	loader := config.NewLoader(filepath.Join(dir, "tend.toml"), nil, config.WithBaseEnv([]string{"PATH=/bin"}))
	cfg, err := loader.Load()
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		log := logrus.New()
		log.Out = io.Discard
		h := &harness{fake: newFake(), sigs: make(chan Order, 1), done: make(chan int, 1)}
		h.sup = New(cfg, Options{Launcher: h.fake, Log: log, Sink: NewSink(io.Discard, io.Discard, "text"), LoadConfig: loader.Load})
		go func() { h.done <- h.sup.Run(h.sigs) }()
		synctest.Wait()
		pids := func() map[string]int {
			return map[string]int{"base": h.pid("base"), "a": h.pid("a"), "b": h.pid("b")}
		}
		before := pids()

		write("conf.d/b.toml", svc("b", "b2")+"restart = \"sometimes\"\n")
		_, err := h.sup.Reload()
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "conf.d/b.toml")+":5: services.b.restart") {
			t.Fatalf("reload of an invalid included file: %v", err)
		}
		synctest.Wait()
		if now := pids(); !maps.Equal(now, before) || h.fake.startCount() != 3 {
			t.Fatalf("an invalid reload touched the services: %v, was %v; %d starts", now, before, h.fake.startCount())
		}

		write("conf.d/b.toml", svc("b", "b2"))
		sum, err := h.sup.Reload()
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !slices.Equal(sum.Restarted, []string{"b"}) || sum.Unchanged != 2 || sum.Files != 3 {
			t.Errorf("summary %+v", sum)
		}
		now := pids()
		if now["base"] != before["base"] || now["a"] != before["a"] || now["b"] == before["b"] || now["b"] == 0 {
			t.Errorf("pids %v, were %v: only b may have a new one", now, before)
		}
		h.shutdown(t)
	})
}
