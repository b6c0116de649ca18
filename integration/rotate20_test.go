package integration

// Issue 20, rotated output files: output_max_size and output_backups, and
// tend ctl reopen.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRotatedOutput100MB: 100 MB of numbered lines through a real service
// into a file of 1 MiB with 3 backups: each file at most 1 MiB, ending in a
// newline, and the four together the last lines in order, with no gap and
// no split line.
func TestRotatedOutput100MB(t *testing.T) {
	needRoot(t)
	const maxSize = 1 << 20
	// seq 1 n writes at least 100 MB.
	n, total := 0, 0
	for total < 100_000_000 {
		n++
		total += len(strconv.Itoa(n)) + 1
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	cfg := writeConfig(t, fmt.Sprintf(`control_socket = "" # not the default /run/tend.sock, which other tends may use
[services.app]
command = ["seq", "1", "%d"]
oneshot = true
output = %q
output_max_size = "1M"
output_backups = 3
`, n, log))
	start := time.Now()
	res := run{pid1: true, timeout: 120 * time.Second, args: []string{"--config", cfg}}.do(t)
	elapsed := time.Since(start)
	if res.code != 0 {
		t.Fatalf("tend exited %d\n%s", res.code, res.stderr)
	}
	if strings.Contains(res.stderr, "ERROR") {
		t.Errorf("errors in tend's log:\n%s", res.stderr)
	}
	if _, err := os.Stat(log + ".4"); err == nil {
		t.Error("app.log.4 exists with output_backups = 3")
	}
	var all []byte
	var sizes []string
	for _, name := range []string{log + ".3", log + ".2", log + ".1", log} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, fmt.Sprintf("%s %d", filepath.Base(name), len(b)))
		if len(b) > maxSize {
			t.Errorf("%s holds %d bytes, more than 1 MiB", name, len(b))
		}
		if len(b) == 0 || b[len(b)-1] != '\n' {
			t.Errorf("%s does not end with a newline", name)
		}
		if name != log && len(b) < maxSize-16 {
			t.Errorf("%s holds %d bytes: a rotated file should be nearly full", name, len(b))
		}
		all = append(all, b...)
	}
	lines := strings.Split(strings.TrimSuffix(string(all), "\n"), "\n")
	first, err := strconv.Atoi(lines[0])
	if err != nil {
		t.Fatalf("the oldest file starts with %q: a split line", lines[0])
	}
	for i, l := range lines {
		if l != strconv.Itoa(first+i) {
			t.Fatalf("line %d of the files is %q, want %d: a gap or a split line", i, l, first+i)
		}
	}
	if last := first + len(lines) - 1; last != n {
		t.Errorf("the last line is %d, want %d", last, n)
	}
	t.Logf("%d bytes in %d lines through tend in %s; kept: %s (lines %d to %d)", total, n, elapsed.Round(time.Millisecond), strings.Join(sizes, ", "), first, n)
}

// TestReopenAfterLogrotate: an external logrotate renames the file; after
// tend ctl reopen the new lines go to a new file at the path, none lost.
func TestReopenAfterLogrotate(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	tend := startControlled(t, fmt.Sprintf(`
[services.app]
command = ["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.005; done"]
output = %q
output_max_size = "1M"

[services.plain]
command = ["sleep", "1000"]
output = %q

[services.pre]
command = ["sleep", "1000"]
`, log, filepath.Join(dir, "plain.log")))
	waitLines := func(path string, n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(path)
			if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
				if l := strings.Split(string(b[:i]), "\n"); len(l) >= n {
					return l
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not %d lines within 10s\n%s", path, n, tend.errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLines(log, 20)
	moved := log + ".moved"
	if err := os.Rename(log, moved); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // lines still go into the moved file
	out, errOut, code := tend.ctl(t, "reopen", "app")
	if code != 0 || out != "app: reopened "+log+"\n" {
		t.Fatalf("tend ctl reopen app: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	fresh := waitLines(log, 20)
	old := waitLines(moved, 1)
	if a, b := atoi(t, old[len(old)-1]), atoi(t, fresh[0]); b != a+1 {
		t.Errorf("the moved file ends with %d, the new one starts with %d", a, b)
	}
	if out, errOut, code := tend.ctl(t, "reopen"); code != 0 || out != "app: reopened "+log+"\n" {
		t.Errorf("tend ctl reopen: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if _, errOut, code := tend.ctl(t, "reopen", "plain"); code != 1 || !strings.Contains(errOut, "writes its output file") || !strings.Contains(errOut, "set output_max_size") {
		t.Errorf("tend ctl reopen plain: exit %d: %s", code, errOut)
	}
	if _, errOut, code := tend.ctl(t, "reopen", "pre"); code != 1 || !strings.Contains(errOut, "has no output file to reopen") {
		t.Errorf("tend ctl reopen pre: exit %d: %s", code, errOut)
	}
	if !strings.Contains(tend.errb.String(), "reopened its output file "+log) {
		t.Errorf("tend did not log the reopen:\n%s", tend.errb.String())
	}
	tend.ctl(t, "shutdown")
	tend.wait(t, 20*time.Second)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}
