package vm

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestInitramfsReadsBack lists an archive with the cpio tool when it is
// installed: every entry, its type and its contents.
func TestInitramfsReadsBack(t *testing.T) {
	var buf bytes.Buffer
	a := New(&buf)
	a.File("/etc/tend.toml", 0o644, []byte("hostname = \"x\"\n"))
	a.File("init", 0o755, []byte("#!/bin/sh\n"))
	a.Symlink("bin/sh", "busybox")
	a.CharDev("dev/console", 0o600, 5, 1)
	a.Dir("dev/shm", 0o777|os.ModeSticky)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", buf.Len())
	}
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("no cpio tool to read the archive back")
	}
	cmd := exec.Command("cpio", "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -itv: %v\n%s", err, out)
	}
	listing := string(out)
	for _, want := range []string{"drwxr-xr-x", "etc/tend.toml", "-rwxr-xr-x", "init", "bin/sh -> busybox", "crw-------", "dev/console", "drwxrwxrwt", "dev/shm"} {
		if !strings.Contains(listing, want) {
			t.Errorf("listing lacks %q:\n%s", want, listing)
		}
	}
	cmd = exec.Command("cpio", "-i", "--quiet", "--to-stdout", "etc/tend.toml")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	if out, err := cmd.Output(); err != nil || string(out) != "hostname = \"x\"\n" {
		t.Errorf("etc/tend.toml reads back as %q, %v", out, err)
	}
}
