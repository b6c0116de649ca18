package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"

	"github.com/tend-init/tend/signals"
)

// decode parses data into plain TOML values (map[string]any, []any, string,
// int64, float64, bool, dates). Key lines are found later, and only for keys
// with problems (see keyLines).
func decode(data []byte) (map[string]any, error) {
	var root map[string]any
	if _, err := toml.Decode(string(data), &root); err != nil {
		return nil, err
	}
	return root, nil
}

// syntaxError turns a decoding error into *Errors.
func syntaxError(path string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Errors{List: []Error{{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: "TOML syntax: " + pe.Message}}}
	}
	return &Errors{List: []Error{{File: path, Msg: err.Error()}}}
}

// parser collects every problem in a config, over all the files of its
// include tree, instead of stopping at the first.
type parser struct {
	main *source // the file the config was loaded from
	env  func(string) (string, bool)
	opts options
	errs []problem

	// defs are the services of the tree, merged (include.go): a problem
	// under services.NAME is in the file that key came from.
	defs map[string]*definition

	users *userDB  // read once per load, when a service names a user or group
	env0  *envBase // tend's own environment, parsed once per load

	globalEnvFiles []EnvFile        // the top-level env_file
	envFileErrs    map[string]error // each env file read at load, by path: read once per load however many services name it
}

// problem is an Error whose line is still to be found: the line of key at
// in file src. A problem with a ref also names another place, whose line
// is found the same way and handed to msg.
type problem struct {
	Error
	src *source
	at  string
	ref *source
	// refAt is the key in ref whose line msg is given.
	refAt string
	msg   func(refLine int) string
}

func (p *parser) errorf(key toml.Key, format string, args ...any) {
	p.errorOn(nil, key, key, format, args...)
}

// errorOn reports a problem with key on the line where at is defined in
// src; a nil src is the file that at came from.
func (p *parser) errorOn(src *source, at, key toml.Key, format string, args ...any) {
	if src == nil {
		src = p.sourceOf(at)
	}
	p.errs = append(p.errs, problem{Error: Error{File: src.path, Key: key.String(), Msg: fmt.Sprintf(format, args...)}, src: src, at: at.String()})
}

// lined reports a problem whose line is known already (0: none).
func (p *parser) lined(src *source, line int, key, msg string) {
	p.errs = append(p.errs, problem{Error: Error{File: src.path, Line: line, Key: key, Msg: msg}, src: src})
}

// sourceOf is the file that key came from: for a key under services.NAME,
// the file of that service (or of that key of it, when files merged it);
// else the main file.
func (p *parser) sourceOf(key toml.Key) *source {
	if len(key) >= 2 && key[0] == "services" {
		if d := p.defs[key[1]]; d != nil {
			return d.sourceOf(key[2:])
		}
	}
	return p.main
}

// result finds the lines of the problems (one scan of each file that has
// any, however many there are) and sorts them into file order: the files in
// the order they were read, each by line, those without a line last.
func (p *parser) result() error {
	if len(p.errs) == 0 {
		return nil
	}
	want := make(map[*source]map[string]bool)
	ask := func(src *source, at string) {
		if want[src] == nil {
			want[src] = make(map[string]bool)
		}
		want[src][at] = true
	}
	for _, e := range p.errs {
		if e.Line == 0 && e.at != "" {
			ask(e.src, e.at)
		}
		if e.ref != nil {
			ask(e.ref, e.refAt)
		}
	}
	lines := make(map[*source]map[string]int, len(want))
	for src, keys := range want {
		lines[src] = keyLines(src.data, keys)
	}
	list := make([]problem, len(p.errs))
	for i, e := range p.errs {
		if e.Line == 0 && e.at != "" {
			e.Line = lines[e.src][e.at]
		}
		if e.msg != nil {
			e.Msg = e.msg(lines[e.ref][e.refAt])
		}
		list[i] = e
	}
	line := func(e problem) int {
		if e.Line == 0 {
			return math.MaxInt
		}
		return e.Line
	}
	slices.SortStableFunc(list, func(a, b problem) int {
		return cmp.Or(cmp.Compare(a.src.index, b.src.index), cmp.Compare(line(a), line(b)))
	})
	out := make([]Error, len(list))
	for i, e := range list {
		out[i] = e.Error
	}
	return &Errors{List: out}
}

// table reads the keys of one TOML table. Every key a getter asks about is
// known; done reports the rest as unknown.
type table struct {
	p        *parser
	src      *source // the file the table is in; nil: the file each key came from
	key      toml.Key
	m        map[string]any
	known    []string        // the keys asked about
	knownSet map[string]bool // the same, once there are many (the services table)
}

func (t *table) child(name string) toml.Key { return append(t.key[:len(t.key):len(t.key)], name) }

func (t *table) errorf(name string, format string, args ...any) {
	k := t.child(name)
	t.p.errorOn(t.src, k, k, format, args...)
}

// problem reports a problem with the table itself, on its own line.
func (t *table) problem(format string, args ...any) {
	t.p.errorOn(t.src, t.key, t.key, format, args...)
}

// missing reports a required key that is absent, on the table's own line.
func (t *table) missing(name string, format string, args ...any) {
	t.p.errorOn(t.src, t.key, t.child(name), format, args...)
}

// manyKnown is where known keys move from a list to a set: a service table
// asks about some twenty keys, the services table about every service.
const manyKnown = 32

func (t *table) get(name string) (any, bool) {
	if !t.isKnown(name) {
		t.known = append(t.known, name)
		switch {
		case t.knownSet != nil:
			t.knownSet[name] = true
		case len(t.known) > manyKnown:
			t.knownSet = make(map[string]bool, 2*len(t.known))
			for _, k := range t.known {
				t.knownSet[k] = true
			}
		}
	}
	v, ok := t.m[name]
	return v, ok
}

func (t *table) isKnown(name string) bool {
	if t.knownSet != nil {
		return t.knownSet[name]
	}
	return slices.Contains(t.known, name)
}

func (t *table) has(name string) bool {
	_, ok := t.get(name)
	return ok
}

func (t *table) typeError(name, want string, v any) {
	t.errorf(name, "must be %s, not %s", want, typeName(v))
}

// done reports every key no getter asked about.
func (t *table) done() {
	var known []string
	for _, k := range slices.Sorted(maps.Keys(t.m)) {
		if t.isKnown(k) {
			continue
		}
		if known == nil {
			known = slices.Sorted(slices.Values(t.known))
		}
		if s := closest(k, known); s != "" {
			t.errorf(k, "unknown key; did you mean %q?", s)
		} else {
			t.errorf(k, "unknown key (known here: %s)", strings.Join(known, ", "))
		}
	}
}

func (t *table) sub(name string) *table {
	v, ok := t.get(name)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.typeError(name, "a table", v)
		return nil
	}
	return &table{p: t.p, src: t.src, key: t.child(name), m: m}
}

// str returns the key's string value after ${VAR} expansion, or def when the
// key is absent or wrong (the problem is recorded).
func (t *table) str(name, def string) string {
	if s, ok := t.lookupStr(name); ok {
		return s
	}
	return def
}

// lookupStr is str for keys without a default: ok is false when the key is
// absent or wrong, so that callers don't report a second problem about it.
func (t *table) lookupStr(name string) (string, bool) {
	v, ok := t.get(name)
	if !ok {
		return "", false
	}
	return t.expand(name, v)
}

// expand reads a string value and expands its ${VAR}s. Every string read
// from the file comes through here, so this is where a NUL byte is refused.
func (t *table) expand(name string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		t.typeError(name, "a string", v)
		return "", false
	}
	s, err := expand(s, t.p.env)
	if err != nil {
		t.errorf(name, "%v", err)
		return "", false
	}
	if msg := badNUL(s); msg != "" {
		t.errorf(name, "%s", msg)
		return "", false
	}
	return s, true
}

// badNUL says where s has a NUL byte ("" when it has none). TOML lets a
// string hold one ("\u0000"), but the kernel takes every argument,
// environment entry and path as a C string, which ends at the first NUL:
// such a command passes `tend check` and then fails every start with
// EINVAL (exit 126), in a crash loop. No setting of tend's has a use for
// a NUL, so it is refused in all of them, at load, where the file and
// line can be named.
func badNUL(s string) string {
	i := strings.IndexByte(s, 0)
	if i < 0 {
		return ""
	}
	return fmt.Sprintf("%s has a NUL byte (\\u0000) at byte %d: the kernel ends every argument, environment variable and path at a NUL, so no program can be given this value; remove the NUL", quoteAround(s, i), i)
}

// quoteAround quotes s for a message, or when s is long, the 32 bytes on
// either side of byte i, so that a megabyte-long value does not make a
// megabyte-long message.
func quoteAround(s string, i int) string {
	const side = 32
	if len(s) <= 2*side+8 {
		return strconv.Quote(s)
	}
	from, to := max(0, i-side), min(len(s), i+1+side)
	q := strconv.Quote(s[from:to])
	if from > 0 {
		q = "..." + q
	}
	if to < len(s) {
		q += "..."
	}
	return q
}

// oneOf reads a string that must be one of allowed.
func (t *table) oneOf(name, def string, allowed ...string) string {
	s := t.str(name, def)
	if !slices.Contains(allowed, s) {
		t.errorf(name, "unknown value %q (use %s)", s, joinList(allowed, "or"))
		return def
	}
	return s
}

// duration reads a Go duration string. Zero is allowed unless positive is set;
// negative durations never are.
func (t *table) duration(name string, def time.Duration, positive bool) time.Duration {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	if _, ok := v.(string); !ok {
		t.errorf(name, "must be a duration string such as \"500ms\", \"10s\" or \"1m30s\", not %s", typeName(v))
		return def
	}
	s, ok := t.expand(name, v)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		t.errorf(name, "%q is not a duration (write it like \"500ms\", \"10s\" or \"1m30s\")", s)
	case d < 0:
		t.errorf(name, "must not be negative, got %s", s)
	case d == 0 && positive:
		t.errorf(name, "must be greater than zero")
	default:
		return d
	}
	return def
}

// integer reads an integer that must be at least min.
func (t *table) integer(name string, def, min int) int {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	n, ok := v.(int64)
	switch {
	case !ok:
		t.typeError(name, "an integer", v)
	case n < int64(min):
		t.errorf(name, "must be %d or more, got %d", min, n)
	case n > math.MaxInt32:
		t.errorf(name, "%d is too large", n)
	default:
		return int(n)
	}
	return def
}

func (t *table) float(name string, def float64) float64 {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	switch f := v.(type) {
	case float64:
		return f
	case int64:
		return float64(f)
	}
	t.typeError(name, "a number", v)
	return def
}

func (t *table) boolean(name string, def bool) bool {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		t.typeError(name, "true or false", v)
		return def
	}
	return b
}

// signal reads a signal given as a name or a number.
func (t *table) signal(name string, def unix.Signal) unix.Signal {
	v, ok := t.get(name)
	if !ok {
		return def
	}
	var s string
	switch x := v.(type) {
	case int64:
		s = strconv.FormatInt(x, 10)
	case string:
		if s, ok = t.expand(name, x); !ok {
			return def
		}
	default:
		t.errorf(name, "must be a signal name such as \"TERM\" or a number, not %s", typeName(v))
		return def
	}
	sig, err := signals.Parse(s)
	if err != nil {
		t.errorf(name, "%v", err)
		return def
	}
	return sig
}

// words reads a command: an array taken as is, or a string split like a
// shell would. ok is false when the key is absent or wrong.
func (t *table) words(name string) (words []string, ok bool) {
	v, present := t.get(name)
	if !present {
		return nil, false
	}
	switch x := v.(type) {
	case string:
		s, ok := t.expand(name, x)
		if !ok {
			return nil, false
		}
		var err error
		if words, err = splitWords(s); err != nil {
			t.errorf(name, "%v", err)
			return nil, false
		}
	case []any:
		words, ok = t.stringArray(name, x)
		if !ok {
			return nil, false
		}
	default:
		t.errorf(name, "must be an array of strings or a string, not %s", typeName(v))
		return nil, false
	}
	switch {
	case len(words) == 0:
		t.errorf(name, "is empty; give the program to run and its arguments")
	case words[0] == "":
		t.errorf(name, "the program name (first element) is empty")
	default:
		return words, true
	}
	return nil, false
}

// stringArray expands every element of an array of strings.
func (t *table) stringArray(name string, arr []any) ([]string, bool) {
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		if _, ok := e.(string); !ok {
			t.errorf(name, "every element must be a string, found %s", typeName(e))
			return nil, false
		}
		s, ok := t.expand(name, e)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	}
	return "a date/time"
}

// joinList writes "a, b or c" (conj "or") or "a, b and c" (conj "and").
func joinList(words []string, conj string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

// closest returns the candidate within two edits of s, for "did you mean".
func closest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		// Lengths this far apart cannot be close; skipping them keeps a
		// megabyte-long key from costing megabytes times each candidate.
		if abs(len(s)-len(c)) >= bestDist {
			continue
		}
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
