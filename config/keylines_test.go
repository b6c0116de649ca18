package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"
)

// referenceLines is how tend found key lines before keyLines: provoking a
// ParseError for each key, which carries the decoder's own position of it.
// It is quadratic in the file, so only tests and fuzzing use it, as the
// reference keyLines must agree with.
func referenceLines(data []byte) (map[string]int, error) {
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		return nil, err
	}
	lines := make(map[string]int)
	for k, p := range top {
		refLocate(&md, toml.Key{k}, p, lines)
	}
	return lines, nil
}

type refLocator struct{ val any }

var errRefLocated = errors.New("located")

func (l *refLocator) UnmarshalTOML(v any) error {
	l.val = v
	return errRefLocated
}

func refLocate(md *toml.MetaData, key toml.Key, p toml.Primitive, lines map[string]int) int {
	var l refLocator
	var pe toml.ParseError
	line := 0
	if err := md.PrimitiveDecode(p, &l); errors.As(err, &pe) {
		line = pe.Position.Line
	}
	var kids map[string]toml.Primitive
	if _, ok := l.val.(map[string]any); ok && md.PrimitiveDecode(p, &kids) == nil {
		implicit := line == 0
		for k, kp := range kids {
			kl := refLocate(md, append(key[:len(key):len(key)], k), kp, lines)
			if implicit && kl > 0 && (line == 0 || kl < line) {
				line = kl
			}
		}
	}
	lines[key.String()] = line
	return line
}

// allLines runs keyLines asking for every key the reference knows, and more.
func allLines(t *testing.T, src string, more map[string]int) (got, want map[string]int) {
	t.Helper()
	want, err := referenceLines([]byte(src))
	if err != nil {
		t.Fatalf("not valid TOML: %v", err)
	}
	ask := make(map[string]bool)
	for k := range want {
		ask[k] = true
	}
	for k := range more {
		ask[k] = true
	}
	return keyLines([]byte(src), ask), want
}

func TestKeyLines(t *testing.T) {
	// The decoder's own positions differ from the key's line in two cases,
	// where keyLines is the one that is right: a key whose value is a
	// multi-line string is placed on the line where the string ends, and an
	// empty key ('' = 1) moves its table to its own line. Those cases set
	// quirk, and keyLines may give an earlier line than the decoder.
	tests := []struct {
		name  string
		src   string
		lines map[string]int // the lines of some keys
		quirk bool
	}{
		{"headers and keys", "a = 1\n\n[t]\nb = 2\n[t.u]\nc = 3\n", map[string]int{"a": 1, "t": 3, "t.b": 4, "t.u": 5, "t.u.c": 6}, false},
		{"a table made by a deeper header has the first line in it", "x = 1\n[s.a]\nk = 1\n[s.b]\n", map[string]int{"s": 2, "s.a": 2, "s.b": 4}, false},
		{"a header after its sub-table is its line", "[s.a]\nk = 1\n[s]\nj = 2\n", map[string]int{"s": 3, "s.a": 1, "s.j": 4}, false},
		{"dotted keys", "[t]\na.b.c = 1\na.d = 2\n", map[string]int{"t.a": 2, "t.a.b": 2, "t.a.b.c": 2, "t.a.d": 3}, false},
		{"inline tables", "x = { a = 1, b = { c = 2 } }\ny = 3\n", map[string]int{"x": 1, "x.a": 1, "x.b.c": 1, "y": 2}, false},
		{"inline tables across lines (TOML 1.1)", "x = {\n  a = 1, # one\n  b = [\n    2,\n  ],\n}\ny = 1\n", map[string]int{"x": 1, "x.a": 2, "x.b": 3, "y": 7}, false},
		{"multi-line strings hold what looks like keys", "a = \"\"\"\n[t]\nb = 1\n\\\"\"\"\"\"\nc = '''\n[u]\nd = 2''''\ne = 1\n", map[string]int{"a": 1, "c": 5, "e": 8}, true},
		{"a line-ending backslash", "a = \"\"\"x \\\n  y\"\"\"\nb = 1\n", map[string]int{"a": 1, "b": 3}, true},
		{"quoted keys", "\"a b\" = 1\n'c.d' = 2\n\"e\\u0066\\t\".g = 3\n[\"h\\\"\".'i']\nj = 4\n", map[string]int{`"a b"`: 1, `"c.d"`: 2, `"ef\t".g`: 3, `"h\"".i.j`: 5}, false},
		{"empty quoted key", "\"\" = 1\n[x]\n'' = 2\n", map[string]int{`""`: 1, "x": 2, `x.""`: 3}, true},
		{"whitespace around dots", "[ a . b ]\nc . d = 1\n", map[string]int{"a.b": 1, "a.b.c.d": 2}, false},
		{"arrays of tables", "[[p]]\nn = 1\n[[p]]\nn = 2\n[q]\n", map[string]int{"p": 1, "p.n": 2, "q": 5}, true},
		{"comments with quotes and brackets", "# a = \"[x]\n a = 1 # ' [y]\n[z] # \"\nb = 2\n", map[string]int{"a": 2, "z": 3, "z.b": 4}, false},
		{"CRLF line ends", "a = 1\r\n[t]\r\nb = \"\"\"\r\nx\r\n\"\"\"\r\nc = 2\r\n", map[string]int{"a": 1, "t.b": 3, "t.c": 6}, true},
		{"a byte order mark", "\xef\xbb\xbfa = 1\nb = 2\n", map[string]int{"a": 1, "b": 2}, false},
		{"dates and numbers", "a = 1979-05-27 07:32:00Z\nb = -1.5e3\nc = [inf, nan, 0x1f]\nd = true\n", map[string]int{"d": 4}, false},
		{"strings in arrays", "a = [\"]\", ']', \"\"\"\n]\"\"\", '''\n}''']\nb = 1\n", map[string]int{"b": 4}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := allLines(t, tt.src, tt.lines)
			for k, l := range tt.lines {
				if got[k] != l {
					t.Errorf("%s: line %d, want %d", k, got[k], l)
				}
			}
			if msg := compareLines(got, want, tt.quirk); msg != "" {
				t.Error(msg)
			}
		})
	}
}

// compareLines checks keyLines' lines (got) against the decoder's (want):
// every key is found, and at the same line unless quirk (see TestKeyLines),
// then at the same line or an earlier one. Arrays of tables repeat keys: the
// decoder keeps the last, keyLines the first.
func compareLines(got, want map[string]int, quirk bool) string {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, w := got[k], want[k]
		switch {
		case g == 0:
			return fmt.Sprintf("%s: not found; the decoder says line %d", k, w)
		case g != w && !quirk, w > 0 && g > w:
			return fmt.Sprintf("%s: line %d; the decoder says %d", k, g, w)
		}
	}
	return ""
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`: "plain", `a\tb`: "a\tb", `\"\\`: `"\`, `\u00e9\U0001F600`: "é😀", `\x41\e`: "A\x1b",
		`\b\f\n\r`: "\b\f\n\r", `\q`: `\q`, `\u12`: `\u12`, `\uzzzz`: `\uzzzz`, `end\`: `end\`,
	} {
		if got := unescape([]byte(in)); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
