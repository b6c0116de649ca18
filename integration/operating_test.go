package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// needTool finds a program a test needs; under CI a missing one fails.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (Debian package %s); CI must install it", name, pkg)
		}
		t.Skipf("%s is missing (Debian package %s)", name, pkg)
	}
	return path
}

func TestMetricsPassPromtool(t *testing.T) {
	needRoot(t)
	promtool := needTool(t, "promtool", "prometheus")
	port := freePort(t)
	c := startControlled(t, fmt.Sprintf(`metrics_listen = "127.0.0.1:%d"
[services.web]
command = "sleep 300"
[services.flaky]
command = "sh -c 'sleep 0.2; exit 3'"
backoff = { delay = "100ms" }
[services.flaky.health]
exec = ["true"]
interval = "100ms"
`, port))
	c.waitState(t, "web", "running")
	time.Sleep(time.Second) // flaky has exited and restarted a few times
	out, errOut, code := c.ctl(t, "metrics")
	if code != 0 {
		t.Fatalf("tend ctl metrics: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`tend_service_state{service="web",state="running"} 1`,
		`tend_service_last_exit_code{service="flaky"} 3`,
		`tend_service_restarts_total{service="flaky"}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the metrics:\n%s", want, out)
		}
	}
	// The same over TCP (metrics_listen), and nothing else there.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `tend_service_state{service="web",state="running"} 1`) {
		t.Fatalf("metrics_listen: %d\n%s", resp.StatusCode, body)
	}
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/v1/services", port)); err != nil || resp.StatusCode != 404 {
		t.Fatalf("metrics_listen served the control API: %v %v", resp, err)
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(out)
	if res, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\nmetrics:\n%s", err, res, out)
	}
}

func TestLogsAndEventsThroughCtl(t *testing.T) {
	needRoot(t)
	c := startControlled(t, `
[services.talker]
command = ["sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; exec sleep 300"]
[services.other]
command = "sleep 300"
`)
	c.waitState(t, "talker", "running")
	// Six lines were written: five on stdout, then one on stderr. The two
	// pipes are read apart, so "oops" may be stamped before "line 5".
	deadline := time.Now().Add(5 * time.Second)
	var out string
	for time.Now().Before(deadline) {
		out, _, _ = c.ctl(t, "logs", "-n", "6", "talker")
		if strings.Contains(out, "oops") && strings.Contains(out, "line 5") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var stdout []string
	for _, l := range lines {
		if i := strings.Index(l, "talker | line "); i >= 0 {
			stdout = append(stdout, l[i+len("talker | "):])
		}
	}
	if len(lines) != 6 || strings.Join(stdout, ",") != "line 1,line 2,line 3,line 4,line 5" || !strings.Contains(out, "talker | oops") {
		t.Fatalf("tend ctl logs -n 6 talker:\n%s", out)
	}
	if out, _, _ := c.ctl(t, "logs", "-n", "2", "talker"); len(strings.Split(strings.TrimSpace(out), "\n")) != 2 {
		t.Fatalf("tend ctl logs -n 2 talker:\n%s", out)
	}
	if _, errOut, code := c.ctl(t, "logs", "nope"); code != 1 || !strings.Contains(errOut, "no such service") {
		t.Fatalf("logs of an unknown service: exit %d: %s", code, errOut)
	}
	if _, errOut, code := c.ctl(t, "logs", "-n", "x", "talker"); code != 2 {
		t.Fatalf("logs -n x: exit %d: %s", code, errOut)
	}

	// events and logs -f, while an operator restarts talker.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := exec.CommandContext(ctx, tendBin, "ctl", "--socket", c.socket, "events")
	follow := exec.CommandContext(ctx, tendBin, "ctl", "--socket", c.socket, "logs", "-f", "-n", "0", "talker")
	evOut, _ := events.StdoutPipe()
	lgOut, _ := follow.StdoutPipe()
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // both are subscribed
	if _, errOut, code := c.ctl(t, "restart", "talker"); code != 0 {
		t.Fatalf("restart: exit %d: %s", code, errOut)
	}
	want := func(r *bufio.Scanner, what string) {
		t.Helper()
		for r.Scan() {
			if strings.Contains(r.Text(), what) {
				return
			}
		}
		t.Fatalf("never saw %q", what)
	}
	ev, lg := bufio.NewScanner(evOut), bufio.NewScanner(lgOut)
	want(ev, "talker running → stopping: operator restart")
	want(ev, "talker stopping → running: restarted")
	// stdout and stderr are two pipes read apart: their lines may
	// interleave either way, each stream in its own order.
	seen := map[string]bool{}
	for !(seen["line 1"] && seen["oops"]) && lg.Scan() {
		for _, w := range []string{"line 1", "oops"} {
			if strings.HasSuffix(lg.Text(), "talker | "+w) {
				seen[w] = true
			}
		}
	}
	if !seen["line 1"] || !seen["oops"] {
		t.Fatalf("tend ctl logs -f after the restart saw %v", seen)
	}
	if _, _, code := c.ctl(t, "shutdown"); code != 0 {
		t.Fatal("shutdown not answered")
	}
	// Both streams end when tend exits.
	if err := events.Wait(); err != nil {
		t.Errorf("tend ctl events after tend exited: %v\n%s", err, c.errb.String())
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("tend ctl logs -f after tend exited: %v", err)
	}
	c.wait(t, 20*time.Second)
}
