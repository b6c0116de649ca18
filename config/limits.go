package config

import (
	"fmt"
	"io"
	"os"
)

// Limits on what tend hands to the TOML decoder. BurntSushi/toml needs
// about 40 to 300 bytes of memory and up to a microsecond per byte of input,
// and far more when the input nests deeply, because every level of a key
// path is a table holding its own copy of the path: 3,000 nested inline
// tables (12 KB) took 577 MB and 7.6 s, 10,000 took 6.1 GB and 86 s. So the
// size and the nesting are checked first, by one pass over the bytes that
// allocates nothing.
const (
	// MaxSize is the largest config file tend reads. 4 MiB holds 50,000
	// services of two lines each; a file written by hand is a few KB. It
	// bounds what rejecting a file can cost, since a file must be decoded
	// before it can be found invalid (figures in docs/config-limits.md).
	MaxSize = 4 << 20

	// MaxDepth is how deeply keys and arrays may nest, counting each piece
	// of a key path ([a.b] is 2, a.b = 1 is 2, a = { b = 1 } is 2) and each
	// array. The deepest thing a valid config has is 5:
	// services.NAME.ready.exec = ["..."]; anything deeper cannot be valid.
	MaxDepth = 8
)

// readLimited reads the file at path, refusing one larger than MaxSize
// without reading more than MaxSize+1 bytes of it.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxSize {
		size := "more than " + fmt.Sprint(MaxSize) + " bytes"
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			size = fmt.Sprint(fi.Size()) + " bytes"
		}
		return nil, tooBig(path, size)
	}
	return data, nil
}

func tooBig(path, size string) error {
	return &Errors{List: []Error{{File: path, Msg: fmt.Sprintf(
		"the file is %s; tend reads config files of at most %d bytes (%d MiB): make it smaller",
		size, MaxSize, MaxSize>>20)}}}
}

// checkLimits rejects data that is too large or nests too deeply, before the
// decoder sees it. It is a byte scan that knows where TOML strings, comments,
// keys and brackets are; it does not validate, so on broken input it may
// count too much but never too little: every '[' and '{' counts, and every
// dot of a key. With topOnly it stops at the first table header and returns
// where that is: the end of the top-level keys, for ControlSocket.
func checkLimits(path string, data []byte, topOnly bool) (end int, err error) {
	if len(data) > MaxSize {
		return 0, tooBig(path, fmt.Sprint(len(data))+" bytes")
	}
	var lim limitScan
	end, line, depth := lim.scan(data, topOnly)
	if depth > MaxDepth {
		return 0, &Errors{List: []Error{{File: path, Line: line, Msg: fmt.Sprintf(
			"nesting goes past %d levels here (each piece of a key path and each array is one); "+
				"tend reads at most %d, and no valid key needs more than 5 (services.NAME.ready.exec = [...]): remove the extra levels",
			MaxDepth, MaxDepth)}}}
	}
	return end, nil
}

// limitScan is the state of checkLimits' scan.
type limitScan struct {
	// stack holds the open '[' and '{' (kind) and the depth of what is
	// written directly inside each (base).
	stack [MaxDepth + 1]struct {
		kind byte
		base int
	}
	n int // open brackets
}

// scan returns, if the nesting goes past MaxDepth, the line where it does
// and the depth reached there (else depth is 0). With topOnly it stops at
// the first table header and returns its offset as end.
func (s *limitScan) scan(data []byte, topOnly bool) (end, line, depth int) {
	const (
		lineStart = iota // at the start of a line outside any bracket
		inKey            // reading a key (dots count)
		inValue          // reading a value
		inHeader         // inside [table] or [[table]]
	)
	end = len(data)
	line = 1
	state := lineStart
	pieces := 1     // pieces of the key being read
	header := 0     // pieces of the current [table] header
	valueDepth := 0 // depth of the value being read
	base := func() int {
		if s.n == 0 {
			return header
		}
		return s.stack[s.n-1].base
	}
	push := func(kind byte, b int) bool {
		if s.n == len(s.stack) || b > MaxDepth {
			depth = max(b, s.n+1)
			return false
		}
		s.stack[s.n].kind, s.stack[s.n].base = kind, b
		s.n++
		return true
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch c {
		case '\n':
			line++
			if s.n == 0 {
				state = lineStart
			}
			continue
		case ' ', '\t', '\r':
			continue
		case '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
			i-- // the newline is counted above
			continue
		case '"', '\'':
			var next int
			next, line, _ = skipString(data, i, line)
			i = next - 1 // the loop steps past the string's last byte
			if state == lineStart {
				state, pieces = inKey, 1
			}
			continue
		}
		switch state {
		case lineStart:
			if c == '[' {
				if topOnly {
					return i, line, 0
				}
				if i+1 < len(data) && data[i+1] == '[' {
					i++
				}
				state, pieces = inHeader, 1
				continue
			}
			state, pieces = inKey, 1
		case inHeader:
			switch c {
			case '.':
				if pieces++; pieces > MaxDepth {
					return end, line, pieces
				}
			case ']':
				header = pieces
				state = inValue // the rest of the line is not a key
			}
			continue
		}
		switch c {
		case '.':
			if state == inKey {
				if pieces++; base()+pieces > MaxDepth {
					return end, line, base() + pieces
				}
			}
		case '=':
			if state == inKey {
				valueDepth = base() + pieces
				if valueDepth > MaxDepth {
					return end, line, valueDepth
				}
			}
			state = inValue
		case '[':
			if !push('[', valueDepth+1) {
				return end, line, depth
			}
			valueDepth = valueDepth + 1
			state = inValue
		case '{':
			if !push('{', valueDepth) {
				return end, line, depth
			}
			state, pieces = inKey, 1
		case ']', '}':
			if s.n > 0 {
				s.n--
			}
			if s.n > 0 && s.stack[s.n-1].kind == '[' {
				valueDepth = s.stack[s.n-1].base
			}
			state = inValue
		case ',':
			if s.n > 0 && s.stack[s.n-1].kind == '{' {
				state, pieces = inKey, 1
			} else if s.n > 0 {
				valueDepth = s.stack[s.n-1].base
			}
		}
	}
	return end, line, 0
}

// skipString finds the end of the TOML string that starts at data[i] (a
// quote: basic or literal, one or three). It returns the index just past
// it, the line it ends on, and whether it was closed. One that is not runs
// to the end of its line (or of the file, for a multi-line one), as far as
// the decoder could read it. It is the one place that knows where a TOML
// string ends: the limits' scan and the key scanner both use it.
func skipString(data []byte, i, line int) (next, endLine int, closed bool) {
	q := data[i]
	if i+2 < len(data) && data[i+1] == q && data[i+2] == q {
		for i += 3; i < len(data); i++ {
			switch {
			case data[i] == '\n':
				line++
			case data[i] == '\\' && q == '"':
				if i+1 < len(data) && data[i+1] == '\n' {
					line++
				}
				i++
			case data[i] == q && i+2 < len(data) && data[i+1] == q && data[i+2] == q:
				i += 3
				// Up to two more quotes belong to the content.
				for n := 0; n < 2 && i < len(data) && data[i] == q; n++ {
					i++
				}
				return i, line, true
			}
		}
		return len(data), line, false
	}
	for i++; i < len(data); i++ {
		switch {
		case data[i] == '\n':
			return i, line, false
		case data[i] == '\\' && q == '"':
			i++
			if i < len(data) && data[i] == '\n' {
				return i, line, false
			}
		case data[i] == q:
			return i + 1, line, true
		}
	}
	return len(data), line, false
}
