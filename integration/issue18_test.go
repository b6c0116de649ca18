package integration

// Issue 18: terminals, files and the first milliseconds. Each test here
// fails on f3f5e78 (run it with TEND_BIN_UNDER_TEST=<old tend>).

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOutputFileSymlinkNotFollowed: output = PATH is opened by tend as
// root. A service user who can write the log's directory plants a symlink
// to a root-only file there: tend must refuse to start the service, say
// why, and leave the file alone.
func TestOutputFileSymlinkNotFollowed(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o777); err != nil { // the service's user may write here
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("root only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(logs, "out.log")); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fmt.Sprintf(`
control_socket = ""
[services.app]
command = ["sh", "-c", "echo planted"]
user = "nobody"
output = %q
oneshot = true
`, filepath.Join(logs, "out.log")))
	res := run{pid1: true, bin: binUnderTest(), args: []string{"--config", cfg}, timeout: 20 * time.Second}.do(t)
	got, _ := os.ReadFile(secret)
	if string(got) != "root only\n" {
		t.Fatalf("the root-only file was written through the symlink: %q", got)
	}
	if !strings.Contains(res.stderr, "is a symbolic link, which tend does not follow") {
		t.Fatalf("no word of the refused symlink:\n%s", tail(res.stderr))
	}
}
