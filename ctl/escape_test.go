package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/api"
	"github.com/tend-init/tend/api/apitest"
	"github.com/tend-init/tend/control"
	"github.com/tend-init/tend/supervise"
)

// nasty is what a service may write: a title change, a clear screen, a C1
// CSI, a tab (kept) and a carriage return.
const nasty = "\x1b]0;TITLE\a\x1b[2J\u009b31m\tok\r"

// escaped is nasty as tend ctl shows it on a terminal.
const escaped = `\x1b]0;TITLE\a\x1b[2J\u009b31m` + "\t" + `ok\r`

// openPty returns a pseudo-terminal's two ends, the other end in raw mode
// (what is written is read as it is), or skips.
func openPty(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("no pseudo-terminals:", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skip("unlockpt:", err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skip("ptsname:", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip("open the terminal:", err)
	}
	t.Cleanup(func() { s.Close() })
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ICANON
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// readUntil reads r until it has want (or 5 s pass).
func readUntil(t *testing.T, r *os.File, want string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		for !strings.Contains(string(all), want) {
			n, err := r.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- string(all)
	}()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		r.Close() // ends the reader
		t.Fatalf("no %q read", want)
		return ""
	}
}

// TestCLIEscapesControlCharactersOnATerminal is issue 18: on a terminal,
// what services wrote (logs) and said (events, from STATUS=) is shown with
// its control characters escaped; --raw, a pipe and a file get the bytes as
// they are; --json stays JSON, with what encoding/json leaves raw escaped.
func TestCLIEscapesControlCharactersOnATerminal(t *testing.T) {
	sup := &apitest.Supervisor{}
	sup.LogsOf().Add("web", "stdout", time.Now(), []byte(nasty+" end"))
	path := serveSocket(t, sup)
	main := func(stdout *os.File, args ...string) int {
		return Main(append([]string{"--socket", path}, args...), stdout, io.Discard)
	}
	t.Run("terminal", func(t *testing.T) {
		m, tty := openPty(t)
		if code := main(tty, "logs", "web"); code != 0 {
			t.Fatalf("exit %d", code)
		}
		got := readUntil(t, m, " end\n")
		if !strings.Contains(got, "web | "+escaped+" end\n") || strings.ContainsAny(got, "\x1b\a\r\u009b") {
			t.Fatalf("on a terminal: %q", got)
		}
	})
	t.Run("terminal --raw", func(t *testing.T) {
		m, tty := openPty(t)
		if code := main(tty, "logs", "--raw", "web"); code != 0 {
			t.Fatalf("exit %d", code)
		}
		if got := readUntil(t, m, " end\n"); !strings.Contains(got, "web | "+nasty+" end\n") {
			t.Fatalf("--raw on a terminal: %q", got)
		}
	})
	t.Run("terminal --json", func(t *testing.T) {
		m, tty := openPty(t)
		if code := main(tty, "logs", "--json", "web"); code != 0 {
			t.Fatalf("exit %d", code)
		}
		got := readUntil(t, m, "}\n")
		var answer struct{ Lines []supervise.LogLine }
		if err := json.Unmarshal([]byte(got), &answer); err != nil || len(answer.Lines) != 1 || answer.Lines[0].Line != nasty+" end" {
			t.Fatalf("--json on a terminal is not the same JSON: %v %q", err, got)
		}
		if strings.ContainsAny(got, "\x1b\a\r\u009b") || !strings.Contains(got, `\u009b`) {
			t.Fatalf("--json on a terminal: %q", got)
		}
	})
	t.Run("pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		code := main(w, "logs", "web")
		w.Close()
		b, _ := io.ReadAll(r)
		if code != 0 || !strings.Contains(string(b), "web | "+nasty+" end\n") {
			t.Fatalf("exit %d, into a pipe: %q", code, b)
		}
	})
}

// TestCLIEscapesEvents: the terminal decision injected; a service's
// STATUS= text reaches the events' reasons.
func TestCLIEscapesEvents(t *testing.T) {
	old := isTerminal
	t.Cleanup(func() { isTerminal = old })
	isTerminal = func(io.Writer) bool { return true }
	for _, raw := range []bool{false, true} {
		sup := &apitest.Supervisor{Events: supervise.NewEvents()}
		apitest.NoLeaks(t)
		path := t.TempDir() + "/tend.sock"
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := control.Serve(ctx, path, api.NewHandler(sup, nil, apitest.QuietLog()), apitest.QuietLog()); err != nil {
			t.Fatal(err)
		}
		var out, errw syncBuffer
		args := []string{"--socket", path, "events"}
		if raw {
			args = append(args, "--raw")
		}
		done := make(chan int)
		go func() { done <- Main(args, &out, &errw) }()
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), "end"); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("events: %q %s", out.String(), errw.String())
			}
			sup.Events.Publish(supervise.Happening{Time: time.Now(), Kind: supervise.KindState, Service: "web", From: supervise.Running, To: supervise.Running, Reason: "status: " + nasty + " end"})
		}
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d: %s", code, errw.String())
		}
		want := "web running → running: status: " + escaped + " end\n"
		if raw {
			want = "web running → running: status: " + nasty + " end\n"
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("raw %v: %q, want %q", raw, out.String(), want)
		}
	}
}

// syncBuffer is a strings.Builder a test reads while a client writes it.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
