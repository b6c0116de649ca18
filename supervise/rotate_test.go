package supervise

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rotSink is a sink with one output file with rotation, and the errors
// it reported.
type rotSink struct {
	sink *Sink
	path string
	mu   sync.Mutex
	errs []string
}

func newRotSink(t *testing.T, maxSize int64, backups int) *rotSink {
	t.Helper()
	rs := &rotSink{sink: NewSink(io.Discard, io.Discard, "text"), path: filepath.Join(t.TempDir(), "app.log")}
	rs.sink.OnFileError(func(service, msg string) {
		rs.mu.Lock()
		rs.errs = append(rs.errs, service+": "+msg)
		rs.mu.Unlock()
	})
	return rs
}

// run pumps data through a pipe into the file, written in chunks of
// random sizes, and waits until it is all written.
func (rs *rotSink) run(t *testing.T, maxSize int64, backups int, data []byte, setup func(*rotFile)) {
	t.Helper()
	rf, err := rs.sink.openRotating("app", rs.path, maxSize, backups)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(rf)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	rs.sink.pumpFile("app", r, rf)
	rng := rand.New(rand.NewPCG(1, 2))
	for len(data) > 0 {
		n := min(len(data), 1+rng.IntN(3*fileChunk))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
	w.Close()
	if !rs.sink.Wait(10 * time.Second) {
		t.Fatal("the pump did not finish")
	}
}

// files reads PATH.N … PATH.1, PATH: oldest first, those that exist.
func (rs *rotSink) files(t *testing.T, upTo int) (names []string, contents [][]byte) {
	t.Helper()
	for n := upTo; n >= 0; n-- {
		name := rs.path
		if n > 0 {
			name = backupName(rs.path, n)
		}
		b, err := os.ReadFile(name)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		names, contents = append(names, name), append(contents, b)
	}
	return names, contents
}

// checkFiles: each file ends with a newline and holds at most maxSize
// bytes, unless it is a single longer line.
func checkFiles(t *testing.T, names []string, contents [][]byte, maxSize int64) {
	t.Helper()
	for i, b := range contents {
		if len(b) == 0 {
			continue
		}
		if b[len(b)-1] != '\n' {
			t.Errorf("%s does not end with a newline", names[i])
		}
		if int64(len(b)) > maxSize && bytes.Count(b, []byte("\n")) != 1 {
			t.Errorf("%s holds %d bytes in %d lines, more than %d", names[i], len(b), bytes.Count(b, []byte("\n")), maxSize)
		}
	}
}

func lines(lengths ...int) []byte {
	var b bytes.Buffer
	for i, n := range lengths {
		s := fmt.Sprintf("%d:", i)
		b.WriteString(s)
		b.WriteString(strings.Repeat("x", max(0, n-len(s)-1)))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func TestRotationNamesAndShifts(t *testing.T) {
	const maxSize = 4096
	line := lines(100)[:100] // 100 bytes with its newline
	tests := []struct {
		backups, lines int
		wantFiles      int // PATH and its backups that exist
	}{
		{backups: 1, lines: 200, wantFiles: 2},
		{backups: 3, lines: 200, wantFiles: 4},
		{backups: 3, lines: 60, wantFiles: 2}, // one rotation
		{backups: 5, lines: 40, wantFiles: 1}, // none
		{backups: 0, lines: 200, wantFiles: 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d backups %d lines", tt.backups, tt.lines), func(t *testing.T) {
			rs := newRotSink(t, maxSize, tt.backups)
			var in []byte
			for i := range tt.lines {
				l := append([]byte(nil), line...)
				copy(l, fmt.Sprintf("%05d", i))
				in = append(in, l...)
			}
			rs.run(t, maxSize, tt.backups, in, nil)
			names, contents := rs.files(t, tt.backups+2)
			if len(names) != tt.wantFiles {
				t.Fatalf("files %v, want %d of them", names, tt.wantFiles)
			}
			checkFiles(t, names, contents, maxSize)
			// 40 lines of 100 bytes fit in 4096: each full file has 40.
			all := bytes.Join(contents, nil)
			if !bytes.HasSuffix(in, all) {
				t.Errorf("the files, oldest first, are not the end of the input")
			}
			for i, b := range contents[:len(contents)-1] {
				if len(b) != 4000 {
					t.Errorf("%s holds %d bytes, want 4000 (40 lines)", names[i], len(b))
				}
			}
			if want := (tt.lines-1)%40 + 1; len(contents[len(contents)-1]) != want*100 {
				t.Errorf("%s holds %d bytes, want %d", rs.path, len(contents[len(contents)-1]), want*100)
			}
			if len(rs.errs) > 0 {
				t.Errorf("errors: %q", rs.errs)
			}
		})
	}
}

func TestRotationNeverSplitsALine(t *testing.T) {
	const maxSize = 4096
	rng := rand.New(rand.NewPCG(3, 4))
	var lengths []int
	for range 1000 {
		switch rng.IntN(20) {
		case 0:
			lengths = append(lengths, maxSize+rng.IntN(3*maxSize)) // longer than the size
		case 1:
			lengths = append(lengths, maxSize-2+rng.IntN(4)) // around it
		case 2:
			lengths = append(lengths, 1) // an empty line
		default:
			lengths = append(lengths, 5+rng.IntN(300))
		}
	}
	in := lines(lengths...)
	for _, tail := range []string{"", "no newline at the end"} {
		t.Run(fmt.Sprintf("tail %q", tail), func(t *testing.T) {
			rs := newRotSink(t, maxSize, 2000)
			rs.run(t, maxSize, 2000, append(append([]byte(nil), in...), tail...), nil)
			names, contents := rs.files(t, 2001)
			if len(names) < 50 {
				t.Fatalf("only %d files", len(names))
			}
			checkFiles(t, names, contents, maxSize)
			want := in
			if tail != "" {
				want = append(append([]byte(nil), in...), tail+"\n"...)
			}
			if !bytes.Equal(bytes.Join(contents, nil), want) {
				t.Errorf("the files, oldest first, are not the input")
			}
			// A line longer than the size has a file of its own.
			for i, b := range contents {
				if len(b) > maxSize && bytes.Count(b, []byte("\n")) != 1 {
					t.Errorf("%s: %d bytes", names[i], len(b))
				}
			}
		})
	}
}

func TestRotationLongLineInPieces(t *testing.T) {
	// Longer than longLine: written in pieces as it comes, alone.
	const maxSize = 8 << 20
	in := lines(100, 200, longLine*2+123, 50, 60)
	rs := newRotSink(t, maxSize, 5)
	rs.run(t, maxSize, 5, in, nil)
	names, contents := rs.files(t, 6)
	if len(names) != 2 { // the long line starts a file; it fits in it with the two after it
		t.Fatalf("files %v, want 2", names)
	}
	checkFiles(t, names, contents, maxSize)
	if !bytes.Equal(bytes.Join(contents, nil), in) {
		t.Error("the files, oldest first, are not the input")
	}
	if len(contents[0]) != 300 || len(contents[1]) != longLine*2+123+110 {
		t.Errorf("sizes %d, %d", len(contents[0]), len(contents[1]))
	}
}

func TestRotationFailureIsToldOnceAndOutputGoesOn(t *testing.T) {
	defer func(d time.Duration) { rotationRetry = d }(rotationRetry)
	rotationRetry = 0 // try at every line: still told once
	const maxSize = 4096
	in := lines(make100(500)...)
	for _, fail := range []string{"backup", "current"} {
		t.Run(fail, func(t *testing.T) {
			rs := newRotSink(t, maxSize, 3)
			if fail == "backup" { // a backup to shift, which cannot be
				if err := os.WriteFile(backupName(rs.path, 1), []byte("old\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tries := 0
			rf, err := rs.sink.openRotating("app", rs.path, maxSize, 3)
			if err != nil {
				t.Fatal(err)
			}
			rf.rename = func(from, to string) error {
				tries++
				return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EACCES}
			}
			for rest := in; len(rest) > 0; { // a write a line, each trying again
				i := bytes.IndexByte(rest, '\n')
				rf.writeLines(rest[:i+1])
				rest = rest[i+1:]
			}
			rf.release()
			b, err := os.ReadFile(rs.path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, in) {
				t.Errorf("%s holds %d bytes, want all %d", rs.path, len(b), len(in))
			}
			if tries < 10 {
				t.Errorf("%d rotations tried", tries)
			}
			if len(rs.errs) != 1 || !strings.Contains(rs.errs[0], "app: cannot rotate its output file "+rs.path) ||
				!strings.Contains(rs.errs[0], "permission denied") || !strings.Contains(rs.errs[0], "tend must be able to rename and create files in "+filepath.Dir(rs.path)) {
				t.Errorf("errors: %q", rs.errs)
			}
		})
	}
}

func TestRotationRetriesAfterAFailure(t *testing.T) {
	const maxSize = 4096
	rs := newRotSink(t, maxSize, 3)
	now := time.Unix(1000, 0)
	var broken bool
	rf, err := rs.sink.openRotating("app", rs.path, maxSize, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.release()
	rf.now = func() time.Time { return now }
	rf.rename = func(from, to string) error {
		if broken {
			return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EROFS}
		}
		return os.Rename(from, to)
	}
	broken = true
	rf.writeLines(lines(make100(50)...)) // 5000 bytes: one failed rotation
	now = now.Add(rotationRetry / 2)
	broken = false
	rf.writeLines(lines(100)) // too early to try again
	if _, err := os.Stat(backupName(rs.path, 1)); err == nil {
		t.Fatal("rotated before rotationRetry")
	}
	now = now.Add(rotationRetry)
	rf.writeLines(lines(100))
	if b, _ := os.ReadFile(rs.path); len(b) != 100 {
		t.Errorf("after the retry %s holds %d bytes, want 100", rs.path, len(b))
	}
	if b, _ := os.ReadFile(backupName(rs.path, 1)); len(b) != 5100 {
		t.Errorf("%s holds %d bytes, want 5100", backupName(rs.path, 1), len(b))
	}
	if len(rs.errs) != 1 || !strings.Contains(rs.errs[0], "read-only file system") {
		t.Errorf("errors: %q", rs.errs)
	}
}

func TestRotationReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root renames in a read-only directory; TestRotationFailureIsToldOnceAndOutputGoesOn fakes it")
	}
	const maxSize = 4096
	rs := newRotSink(t, maxSize, 3)
	in := lines(make100(200)...)
	rs.run(t, maxSize, 3, nil, nil) // creates the file
	dir := filepath.Dir(rs.path)
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	rs.run(t, maxSize, 3, in, nil)
	if b, _ := os.ReadFile(rs.path); !bytes.Equal(b, in) {
		t.Errorf("%s holds %d bytes, want %d", rs.path, len(b), len(in))
	}
	if len(rs.errs) != 1 {
		t.Errorf("errors: %q", rs.errs)
	}
}

func TestRotationKeepsOwnerAndMode(t *testing.T) {
	const maxSize = 4096
	rs := newRotSink(t, maxSize, 2)
	if err := os.WriteFile(rs.path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(rs.path, 0o640); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(rs.path, 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	rs.run(t, maxSize, 2, lines(make100(100)...), nil)
	st, err := os.Stat(rs.path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode())
	}
	if sys := st.Sys().(*syscall.Stat_t); os.Geteuid() == 0 && (sys.Uid != 1234 || sys.Gid != 5678) {
		t.Errorf("owner %d:%d, want 1234:5678", sys.Uid, sys.Gid)
	}
	if _, err := os.Stat(backupName(rs.path, 2)); err != nil {
		t.Error(err)
	}
}

func TestReopenAfterAnExternalMove(t *testing.T) {
	const maxSize = 1 << 20
	rs := newRotSink(t, maxSize, 2)
	rf, err := rs.sink.openRotating("app", rs.path, maxSize, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.release()
	rf.writeLines([]byte("before\n"))
	moved := rs.path + ".moved"
	if err := os.Rename(rs.path, moved); err != nil {
		t.Fatal(err)
	}
	rf.writeLines([]byte("still into the moved file\n"))
	if open, err := rs.sink.reopenFile(rs.path); !open || err != nil {
		t.Fatalf("reopen: %v, %v", open, err)
	}
	rf.writeLines([]byte("after\n"))
	if b, _ := os.ReadFile(moved); string(b) != "before\nstill into the moved file\n" {
		t.Errorf("moved file: %q", b)
	}
	if b, _ := os.ReadFile(rs.path); string(b) != "after\n" {
		t.Errorf("new file: %q", b)
	}
	if open, err := rs.sink.reopenFile(rs.path + ".other"); open || err != nil {
		t.Errorf("reopen of a file not open: %v, %v", open, err)
	}
}

func TestRotationOfAFileMovedAway(t *testing.T) {
	// Moved by someone else and not reopened: the rotation starts a new
	// file at the path and renames nothing of theirs.
	const maxSize = 4096
	rs := newRotSink(t, maxSize, 2)
	rf, err := rs.sink.openRotating("app", rs.path, maxSize, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.release()
	rf.writeLines(lines(make100(30)...))
	moved := rs.path + ".moved"
	if err := os.Rename(rs.path, moved); err != nil {
		t.Fatal(err)
	}
	rf.writeLines(lines(make100(20)...))
	if b, _ := os.ReadFile(moved); len(b) != 4000 {
		t.Errorf("moved file: %d bytes", len(b))
	}
	if b, _ := os.ReadFile(rs.path); len(b) != 1000 {
		t.Errorf("new file: %d bytes", len(b))
	}
	if _, err := os.Stat(backupName(rs.path, 1)); err == nil {
		t.Error("a backup was made of a file that is not tend's any more")
	}
}

func make100(n int) []int {
	l := make([]int, n)
	for i := range l {
		l[i] = 100
	}
	return l
}
