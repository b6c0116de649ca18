package signals

import (
	"encoding/binary"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestQueued(t *testing.T) {
	cases := []struct {
		urgent []unix.Signal
		first  unix.Signal
		n      int
	}{
		{nil, 35, 30},
		{Urgent(nil), 35, 30},
		{Urgent(Rewrite{40: unix.SIGTERM}), 35, 29},
		{Urgent(Rewrite{35: unix.SIGHUP}), 36, 29},
	}
	for _, c := range cases {
		got := Queued(c.urgent)
		if len(got) != c.n || got[0] != c.first {
			t.Errorf("Queued(%v) = %v", c.urgent, got)
		}
		for _, s := range got {
			if s < 35 || s > 64 || isActedOn(s) {
				t.Errorf("Queued(%v) holds %d", c.urgent, s)
			}
		}
	}
}

func TestSetOf(t *testing.T) {
	// As the kernel reads it: the first 8 bytes, little-endian, on
	// every architecture tend builds for (the words are 64 or 32 bits).
	low64 := func(set unix.Sigset_t) uint64 {
		b := (*[8]byte)(unsafe.Pointer(&set.Val[0]))
		return binary.LittleEndian.Uint64(b[:])
	}
	if got := low64(SetOf(Queued(nil))); got != 0xfffffffc00000000 {
		t.Fatalf("set of 35-64 = %#x", got)
	}
	if got := low64(SetOf([]unix.Signal{unix.SIGHUP, unix.SIGTERM})); got != 1<<0|1<<14 {
		t.Fatalf("set of HUP, TERM = %#x", got)
	}
	set := SetOf([]unix.Signal{unix.SIGTERM, 40})
	for s := unix.Signal(1); s <= Max; s++ {
		if inSet(&set, s) != (s == unix.SIGTERM || s == 40) {
			t.Errorf("inSet(%d) = %v", s, inSet(&set, s))
		}
	}
}

// TestForkUnblocksQueued blocks the queued set on this thread, as tend's
// threads do, and checks that a fork through WithDefaultDispositions gives
// the child an empty mask, and the thread its mask back.
func TestForkUnblocksQueued(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	set := SetOf(Queued(nil))
	if err := BlockQueued(set); err != nil {
		t.Fatal(err)
	}
	defer func() {
		unix.PthreadSigmask(unix.SIG_UNBLOCK, &set, nil)
		blocked.Store(nil)
	}()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var pid int
	WithDefaultDispositions(func() {
		pid, err = forkExec("/bin/grep", []string{"grep", "SigBlk", "/proc/self/status"}, w)
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, 0, nil)
	out := make([]byte, 256)
	n, _ := r.Read(out)
	if got := strings.TrimSpace(string(out[:n])); got != "SigBlk:\t0000000000000000" {
		t.Fatalf("child: %q, want an empty mask", got)
	}
	var now unix.Sigset_t
	unix.PthreadSigmask(unix.SIG_BLOCK, nil, &now)
	if now.Val[0]&set.Val[0] != set.Val[0] {
		t.Fatalf("thread mask after the fork %#x, want %#x kept", now.Val[0], set.Val[0])
	}
}

func forkExec(path string, argv []string, out *os.File) (int, error) {
	return syscall.ForkExec(path, argv, &syscall.ProcAttr{Files: []uintptr{0, out.Fd(), 2}})
}
