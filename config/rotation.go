package config

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultOutputBackups is output_backups when output_max_size is set and
// output_backups is not.
const DefaultOutputBackups = 5

// MinOutputMaxSize is the smallest output_max_size other than 0: a smaller
// one is more likely "10" meant as 10 MiB than a wish for 10-byte files.
const MinOutputMaxSize = 4 << 10

// rotation reads output_max_size and output_backups; output is the
// service's output as read.
func (p *parser) rotation(t *table, output string) (maxSize int64, backups int) {
	backups = t.integer("output_backups", DefaultOutputBackups, 0)
	if v, ok := t.get("output_max_size"); ok {
		n, msg := rotationSize(v)
		switch {
		case msg != "":
			t.errorf("output_max_size", "%s", msg)
		case n != 0 && n < MinOutputMaxSize:
			t.errorf("output_max_size", "is %d bytes; use 0 (no rotation) or at least %d (\"4K\"); sizes take K, M or G (\"10M\")", n, MinOutputMaxSize)
		default:
			maxSize = n
		}
	}
	isFile := output != "" && output != "prefix" && output != "inherit"
	if maxSize > 0 && !isFile {
		t.errorf("output_max_size", "rotates an output file, but output is %q: set output to a file path, or remove output_max_size", output)
	}
	if t.has("output_backups") && maxSize == 0 && !t.has("output_max_size") {
		t.errorf("output_backups", "has no effect without output_max_size: set output_max_size (\"10M\") or remove output_backups")
	}
	if maxSize == 0 {
		backups = 0
	}
	return maxSize, backups
}

// rotationSize reads output_max_size: an integer of bytes, or a size
// string as the byte limits take it (parseSize: "10M", "512K", "1G").
func rotationSize(v any) (int64, string) {
	const want = "must be a size such as \"10M\", \"512K\" or \"1G\" (K, M, G are powers of 1024), or 0 for no rotation"
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return 0, want
		}
		return v, ""
	case string:
		n, ok := parseSize(strings.TrimSpace(v))
		if digits := strings.TrimRight(strings.TrimSpace(v), "KMGTiBkb "); !ok && digits != "" && strings.Trim(digits, "0123456789") == "" {
			return 0, fmt.Sprintf("%q is too large", v) // well formed: it overflowed
		}
		if !ok {
			return 0, fmt.Sprintf("%q %s", v, want)
		}
		if n > 1<<62 {
			return 0, fmt.Sprintf("%q is too large", v)
		}
		return int64(n), ""
	}
	return 0, fmt.Sprintf("%s, not %s", want, typeName(v))
}

// sharedOutputs refuses an output file with rotation that another service
// writes too: tend would rename it under the other's feet, whose process
// would go on writing to the rotated file. Paths are compared as written,
// cleaned; a file reached through two names (a symbolic link in a
// directory above it) is not seen.
func (p *parser) sharedOutputs(services map[string]*Service) {
	byFile := map[string][]string{}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		s := services[name]
		if s.Output == "" || s.Output == "prefix" || s.Output == "inherit" {
			continue
		}
		f := filepath.Clean(s.Output)
		byFile[f] = append(byFile[f], name)
	}
	for _, f := range slices.Sorted(maps.Keys(byFile)) {
		names := byFile[f]
		if len(names) < 2 {
			continue
		}
		for _, name := range names {
			if services[name].OutputMaxSize == 0 {
				continue
			}
			others := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == name })
			p.errorf(toml.Key{"services", name, "output_max_size"},
				"rotates %s, which %s also write%s: a rotated file must have one writer; give each service its own file",
				f, joinList(quoteAll(others), "and"), map[bool]string{true: "s", false: ""}[len(others) == 1])
		}
	}
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strconv.Quote(n)
	}
	return out
}
