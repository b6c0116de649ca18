package integration

// Issue 18, config: `tend check` accepted a NUL byte in a command argument
// and in an environment value, and every start then failed with "invalid
// argument", exit 126, in a crash loop. This test fails on 5fd2559 (run
// it with TEND_BIN_UNDER_TEST=<old tend>).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func TestCheckRefusesNUL(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "ran")
	// Line 4 has the argument, line 5 the environment value.
	cfg := writeConfig(t, fmt.Sprintf(`control_socket = ""

[services.app]
command = ["sh", "-c", "touch %s", "a\u0000b"]
environment = { MODE = "fast\u0000" }
`, marker))
	res := run{bin: binUnderTest(), args: []string{"check", cfg}, timeout: 10 * time.Second}.do(t)
	t.Logf("tend check: exit %d\nstdout: %sstderr: %s", res.code, res.stdout, res.stderr)
	if res.code != 1 {
		t.Fatalf("tend check exited %d, want 1: a NUL cannot reach exec", res.code)
	}
	for _, want := range []string{
		`:4: services.app.command: "a\x00b" has a NUL byte (\u0000) at byte 1: `,
		`:5: services.app.environment.MODE: "fast\x00" has a NUL byte (\u0000) at byte 4: `,
	} {
		if !regexp.MustCompile(regexp.QuoteMeta(cfg+want) + `.*remove the NUL`).MatchString(res.stderr) {
			t.Errorf("tend check did not say %q with what to change:\n%s", cfg+want, res.stderr)
		}
	}

	// Start-up reads the file the same way: nothing starts, exit 2.
	res = run{bin: binUnderTest(), args: []string{"--config", cfg}, timeout: 10 * time.Second}.do(t)
	if res.code != 2 || !regexp.MustCompile(regexp.QuoteMeta(cfg)+`:4: services\.app\.command: .*NUL`).MatchString(res.stderr) {
		t.Fatalf("tend --config: exit %d, want 2 naming line 4\n%s", res.code, tail(res.stderr))
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the service ran although its config was refused")
	}
}
