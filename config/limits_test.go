package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// limitError returns the one problem of err if it is a limit error, else nil.
func limitError(t *testing.T, err error) *Error {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		return nil
	}
	for _, e := range errs.List {
		if strings.Contains(e.Msg, "tend reads at most") || strings.Contains(e.Msg, "tend reads config files of at most") {
			if len(errs.List) != 1 {
				t.Errorf("a limit error comes alone, got %v", err)
			}
			return &e
		}
	}
	return nil
}

func TestDepthLimit(t *testing.T) {
	nest := func(n int, open, value, close string) string {
		return strings.Repeat(open, n) + value + strings.Repeat(close, n)
	}
	tests := []struct {
		name string
		src  string
		line int // the line reported; 0: within the limits
	}{
		// The hostile files of issue 10: each took seconds to minutes and
		// hundreds of MB to GBs before it was refused.
		{"inline tables nested 10,000 deep", "[services.a]\ncommand = \"a\"\nx = " + nest(10000, "{ a = ", "1", " }") + "\n", 3},
		{"a table header of 10,000 pieces", "[" + strings.Repeat("a.", 9999) + "a]\nx = 1\n", 1},
		{"a dotted key of 10,000 pieces", "\n" + strings.Repeat("a.", 9999) + "a = 1\n", 2},
		{"12 KB nested 3,000 deep", "a=" + nest(3000, "{a=", "1", "}") + "\n", 1},
		{"arrays nested 3,000 deep", "a = " + nest(3000, "[", "1", "]") + "\n", 1},
		{"10,000 headers one deeper each, from the ninth", func() string {
			var b strings.Builder
			for i := range 10000 {
				fmt.Fprintf(&b, "[%s]\n", strings.TrimSuffix(strings.Repeat("a.", i%12+1), "."))
			}
			return b.String()
		}(), 9},

		// The edges.
		{"nine pieces in a header", "[a.b.c.d.e.f.g.h.i]\n", 1},
		{"eight pieces in a header", "[a.b.c.d.e.f.g.h]\n", 0},
		{"a key under eight pieces", "[a.b.c.d.e.f.g.h]\n\nx = 1\n", 3},
		{"a quoted piece counts", "[a.b.c.d.e.f.g]\n\"x\".y = 1\n", 2},
		{"a dotted key under a header", "[a.b.c.d]\ne.f.g.h = 1\ni.j.k.l.m = 1\n", 3},
		{"an inline table adds its key's pieces", "a.b = { c.d = { e.f = { g.h = 1 } } }\n", 0},
		{"one piece more", "a.b = { c.d = { e.f = { g.h.i = 1 } } }\n", 1},
		{"arrays count", "a.b.c.d.e.f.g = [1]\na.b.c.d.e.f.x = [[1]]\n", 2},
		{"arrays of inline tables", "a = [{ b = [{ c = [{ d = [{ e = 1 }] }] }] }]\n", 1},
		{"an array across lines", "a = [\n[\n[\n[\n[\n[\n[\n[\n1]]]]]]]]\n", 8},
		{"the next element after a nested one", "a.b.c.d.e.f = [[1], 2, [3]]\n", 0},
		{"brackets in an unclosed array", "a = [" + strings.Repeat("{", 20) + "\n", 1},

		// What does not count.
		{"brackets in strings and comments", "a = \"[[[[[[[[[[{{{{{{{{{{\" # [[[[[[[[[[[[[\nb = '{{{{{{{{{{{{{'\n", 0},
		{"brackets in multi-line strings", "a = \"\"\"\n[[[[[[[[[[\n\\\"\"\"\n[b.c.d.e.f.g.h.i.j]\"\"\"\nb = '''\n{{{{{{{{{{{{{{'''\n", 0},
		{"escaped quotes", `a = "\"[[[[[[[[[[[[\\" # [` + "\n", 0},
		{"dots in values", "a = 1.5\nb = \"x.y.z.a.b.c.d.e.f.g\"\nc = 1979-05-27T07:32:00.999\nd = [1.1, 2.2, 3.3, 4.4, 5.5, 6.6, 7.7, 8.8, 9.9]\n", 0},
		{"the deepest valid config, written inline", `services = { db = { command = "x", ready = { exec = ["a", "b"] }, environment = { A = "b" } } }`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, tt.src, nil)
			e := limitError(t, err)
			switch {
			case tt.line == 0 && e != nil:
				t.Fatalf("refused by the limits: %v", e)
			case tt.line == 0:
				return
			case e == nil:
				t.Fatalf("not refused by the limits: %.300v", err)
			}
			if e.File != "tend.toml" || e.Line != tt.line || !strings.Contains(e.Msg, fmt.Sprintf("tend reads at most %d", MaxDepth)) {
				t.Errorf("got %q, want line %d and the limit", e.Error(), tt.line)
			}
		})
	}
}

func TestSizeLimit(t *testing.T) {
	// Comments only, so that what is under the limit is a valid, empty config.
	fill := func(n int) []byte {
		line := "# a comment to fill the file up\n"
		b := []byte(strings.Repeat(line, n/len(line)+1))[:n]
		b[n-1] = '\n'
		return b
	}
	if _, err := Parse("tend.toml", fill(MaxSize), nil); err != nil {
		t.Errorf("a file of exactly MaxSize: %v", err)
	}
	_, err := Parse("tend.toml", fill(MaxSize+1), nil)
	e := limitError(t, err)
	if e == nil || e.File != "tend.toml" || !strings.Contains(e.Msg, fmt.Sprintf("the file is %d bytes", MaxSize+1)) ||
		!strings.Contains(e.Msg, "make it smaller") {
		t.Errorf("MaxSize+1: got %v", err)
	}

	// Load does not read a big file to find it too big: a sparse 1 GiB file
	// is refused with its real size.
	path := filepath.Join(t.TempDir(), "huge.toml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for name, load := range map[string]func() error{
		"Load":          func() error { _, err := Load(path, nil); return err },
		"ControlSocket": func() error { _, _, err := ControlSocket(path, nil); return err },
	} {
		err := load()
		if e := limitError(t, err); e == nil || e.File != path || !strings.Contains(e.Msg, "the file is 1073741824 bytes") {
			t.Errorf("%s of a 1 GiB file: got %v", name, err)
		}
	}
}
