package config

import (
	"strconv"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Lines of keys, for error messages.
//
// BurntSushi/toml v1.6.0 records where every key is, but keeps it private:
// MetaData.Keys() gives the keys in file order without positions, and the
// only public way to a position is a ParseError, whose construction copies
// and splits the whole file (Position.withCol) — once per key, which made
// loading quadratic (19.5 s for 8,000 services). So tend decodes the file
// without positions and, only when there are errors to report, finds the
// lines of those keys itself, in one pass over the file. A valid config
// never pays for it; an invalid one pays one linear scan however many
// errors it has.

// keyLines returns the line of each key in want (written as toml.Key.String
// writes it). A key gets the line where it is defined: its [table] header,
// its "key =" or the key inside an inline table. A table that only exists
// because of deeper keys ([a.b] defines a, a.b = 1 defines a) gets the first
// line that belongs to it. Keys not found are left out.
//
// data must already have been decoded without error (and so be within the
// nesting limits); on anything else the scan stops early, never fails.
func keyLines(data []byte, want map[string]bool) map[string]int {
	explicit := make(map[string]int)
	implicit := make(map[string]int)
	ks := keyScanner{data: data, line: 1, emit: func(path toml.Key, line int) {
		for n := 1; n <= len(path); n++ {
			k := path[:n].String()
			if !want[k] {
				continue
			}
			if n == len(path) {
				if _, seen := explicit[k]; !seen {
					explicit[k] = line
				}
			} else if _, seen := implicit[k]; !seen {
				implicit[k] = line
			}
		}
	}}
	ks.i = len(utf8BOM(data))
	ks.document()
	for k, l := range implicit {
		if _, ok := explicit[k]; !ok {
			explicit[k] = l
		}
	}
	return explicit
}

func utf8BOM(data []byte) []byte {
	if len(data) >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf {
		return data[:3]
	}
	return nil
}

// keyScanner walks the structure of a TOML document: headers, keys and
// values, skipping the insides of strings. It calls emit with the full path
// of every key it meets. It reads each byte once (values in arrays and
// inline tables recurse, but only as deep as the nesting in the file).
type keyScanner struct {
	data []byte
	i    int
	line int
	bad  bool // the input is not TOML as expected; stop
	emit func(path toml.Key, line int)
}

func (s *keyScanner) peek(off int) byte {
	if s.i+off < len(s.data) {
		return s.data[s.i+off]
	}
	return 0
}

func (s *keyScanner) document() {
	var table toml.Key
	for !s.bad {
		s.skipBlank(true)
		if s.i >= len(s.data) {
			return
		}
		if s.data[s.i] != '[' {
			s.keyValue(table, 0)
			s.skipBlank(false)
			if s.i < len(s.data) && s.data[s.i] != '\n' && s.data[s.i] != '\r' {
				s.bad = true
			}
			continue
		}
		closers := 1
		if s.peek(1) == '[' {
			closers = 2
		}
		s.i += closers
		line := s.line
		key := s.key()
		s.skipBlank(false)
		for range closers {
			if s.peek(0) != ']' {
				s.bad = true
				return
			}
			s.i++
		}
		table = key
		s.emit(key, line)
	}
}

// keyValue reads "key = value" under prefix.
func (s *keyScanner) keyValue(prefix toml.Key, depth int) {
	line := s.line
	key := s.key()
	if s.bad {
		return
	}
	path := append(prefix[:len(prefix):len(prefix)], key...)
	s.emit(path, line)
	s.skipBlank(false)
	if s.peek(0) != '=' {
		s.bad = true
		return
	}
	s.i++
	s.skipBlank(false)
	s.value(path, depth)
}

// key reads a dotted key: bare, "basic" or 'literal' pieces joined by dots.
func (s *keyScanner) key() toml.Key {
	var key toml.Key
	for {
		s.skipBlank(false)
		start := s.i
		switch s.peek(0) {
		case '"':
			end := s.skipString()
			if s.bad {
				return nil
			}
			key = append(key, unescape(s.data[start+1:end-1]))
		case '\'':
			end := s.skipString()
			if s.bad {
				return nil
			}
			key = append(key, string(s.data[start+1:end-1]))
		default:
			for s.i < len(s.data) && isBare(s.data[s.i]) {
				s.i++
			}
			if s.i == start {
				s.bad = true
				return nil
			}
			key = append(key, string(s.data[start:s.i]))
		}
		s.skipBlank(false)
		if s.peek(0) != '.' {
			return key
		}
		s.i++
	}
}

// maxScanDepth stops the recursion on input the decoder would not have
// accepted anyway (Parse checks nesting before decoding).
const maxScanDepth = 2 * MaxDepth

func (s *keyScanner) value(path toml.Key, depth int) {
	if depth > maxScanDepth {
		s.bad = true
		return
	}
	switch s.peek(0) {
	case '"', '\'':
		s.skipString()
	case '[':
		s.items(']', func() { s.value(path, depth+1) })
	case '{':
		s.items('}', func() { s.keyValue(path, depth+1) })
	default:
		// A number, boolean or date/time (which may hold one space).
		start := s.i
		for s.i < len(s.data) {
			c := s.data[s.i]
			if c == ',' || c == ']' || c == '}' || c == '#' || c == '\n' || c == '\r' {
				break
			}
			s.i++
		}
		if s.i == start {
			s.bad = true
		}
	}
}

// items reads the items of an array or an inline table, from its opening
// bracket at s.i to its closing one, end: item reads one, and commas
// separate them. Blank lines and comments may come between (TOML 1.1
// allows them in inline tables too).
func (s *keyScanner) items(end byte, item func()) {
	s.i++
	for !s.bad {
		s.skipBlank(true)
		if s.peek(0) == end {
			s.i++
			return
		}
		item()
		s.skipBlank(true)
		switch s.peek(0) {
		case ',':
			s.i++
		case end:
			s.i++
			return
		default:
			s.bad = true
		}
	}
}

// skipBlank skips spaces, tabs and comments, and newlines too if lines is set.
func (s *keyScanner) skipBlank(lines bool) {
	for s.i < len(s.data) {
		switch c := s.data[s.i]; {
		case c == ' ' || c == '\t':
			s.i++
		case c == '#':
			for s.i < len(s.data) && s.data[s.i] != '\n' {
				s.i++
			}
		case lines && c == '\r':
			s.i++
		case lines && c == '\n':
			s.i++
			s.line++
		default:
			return
		}
	}
}

// skipString skips the string (basic or literal, one quote or three) that
// starts at s.i and returns the index just past it; one not closed is bad.
func (s *keyScanner) skipString() int {
	next, line, closed := skipString(s.data, s.i, s.line)
	s.i, s.line = next, line
	if !closed {
		s.bad = true
	}
	return s.i
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// unescape decodes the escapes of a TOML basic string (TOML 1.1: also \e
// and \xHH). The string has been accepted by the decoder, so an escape it
// does not know is kept as written.
func unescape(b []byte) string {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 == len(b) {
			out = append(out, b[i])
			continue
		}
		i++
		hex := 0
		switch b[i] {
		case 'b':
			out = append(out, '\b')
		case 't':
			out = append(out, '\t')
		case 'n':
			out = append(out, '\n')
		case 'f':
			out = append(out, '\f')
		case 'r':
			out = append(out, '\r')
		case 'e':
			out = append(out, 0x1b)
		case '"', '\\':
			out = append(out, b[i])
		case 'x':
			hex = 2
		case 'u':
			hex = 4
		case 'U':
			hex = 8
		default:
			out = append(out, '\\', b[i])
		}
		if hex == 0 {
			continue
		}
		if i+hex >= len(b) {
			out = append(out, '\\', b[i])
			continue
		}
		n, err := strconv.ParseUint(string(b[i+1:i+1+hex]), 16, 32)
		if err != nil {
			out = append(out, '\\', b[i])
			continue
		}
		out = utf8.AppendRune(out, rune(n))
		i += hex
	}
	return string(out)
}
