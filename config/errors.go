package config

import (
	"fmt"
	"strings"
)

// Error is one problem found in a config file.
type Error struct {
	File string
	Line int    // 1-based; 0 when the problem has no single line
	Key  string // dotted TOML key, e.g. services.db.backoff.max_delay; "" when none applies
	Msg  string
}

// Error formats the problem as FILE:LINE: KEY: MSG, leaving out the parts
// that are unknown.
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a config file, in file order. Load and
// Parse return it (as *Errors) whenever a file is invalid.
type Errors struct {
	List []Error
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, err := range e.List {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual problems to errors.As and errors.Is.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, err := range e.List {
		errs[i] = err
	}
	return errs
}
