package logging

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

// The formats of tend's own log lines (log_format). Field names are
// stable: time, level, msg, service, and from and to on a state change.
const (
	FormatText   = "text"   // for people: 12:01:07 INFO  db running → stopping: …
	FormatLogfmt = "logfmt" // for machines: time=… level=info service=db msg="…"
	FormatJSON   = "json"   // for machines: one JSON object a line
)

// NewFormatter returns the formatter of a log_format. color is for the
// text format only: set it when the output is a terminal and NO_COLOR is
// not set.
//
// No format writes a terminal control byte of a message or field as it is
// (a service's sd_notify STATUS= text is logged): text escapes them (see
// Printable), logfmt quotes every value that has one (Go's escapes), and
// json escapes what encoding/json leaves raw (see PrintableJSON).
func NewFormatter(format string, color bool) logrus.Formatter {
	switch format {
	case FormatJSON:
		return safeJSON{&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}}
	case FormatLogfmt:
		return safeLogfmt{&logrus.TextFormatter{DisableColors: true, FullTimestamp: true, TimestampFormat: time.RFC3339Nano}}
	}
	return &Human{Color: color}
}

// Human formats a line for a person reading a terminal or `docker logs`:
// a short time, the level, the service, and the message once. A state
// change's from and to are in its message already; other fields follow as
// key=value.
type Human struct {
	Color bool
}

// hidden fields: said by the message itself, or by the line's start.
var hidden = map[string]bool{"service": true, "from": true, "to": true}

var levelText = map[logrus.Level]string{
	logrus.PanicLevel: "PANIC", logrus.FatalLevel: "FATAL", logrus.ErrorLevel: "ERROR",
	logrus.WarnLevel: "WARN ", logrus.InfoLevel: "INFO ", logrus.DebugLevel: "DEBUG", logrus.TraceLevel: "TRACE",
}

var levelColor = map[logrus.Level]string{
	logrus.PanicLevel: "\x1b[31;1m", logrus.FatalLevel: "\x1b[31;1m", logrus.ErrorLevel: "\x1b[31m",
	logrus.WarnLevel: "\x1b[33m", logrus.InfoLevel: "\x1b[36m", logrus.DebugLevel: "\x1b[90m", logrus.TraceLevel: "\x1b[90m",
}

// Format implements logrus.Formatter.
func (h *Human) Format(e *logrus.Entry) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(e.Time.Format("15:04:05"))
	b.WriteByte(' ')
	if h.Color {
		b.WriteString(levelColor[e.Level])
		b.WriteString(levelText[e.Level])
		b.WriteString("\x1b[0m")
	} else {
		b.WriteString(levelText[e.Level])
	}
	b.WriteByte(' ')
	if svc, ok := e.Data["service"]; ok {
		if h.Color {
			fmt.Fprintf(&b, "\x1b[1m%s\x1b[0m ", Printable(fmt.Sprint(svc)))
		} else {
			fmt.Fprintf(&b, "%s ", Printable(fmt.Sprint(svc)))
		}
	}
	b.WriteString(Printable(strings.TrimRight(e.Message, "\n")))
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if !hidden[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fmt.Sprint(e.Data[k])
		if strings.ContainsAny(v, " \"=") || Printable(v) != v {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", Printable(k), v)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// Printable escapes what a terminal would act on instead of showing: C0
// control bytes but tab, DEL and C1 controls (U+0080–U+009F), and bytes
// that are not UTF-8. It uses Go's escapes (\a \b \f \n \r \v, else
// \xHH; \u0080–\u009f for C1), so text reads the same as logfmt's quoted
// values. Everything else, backslashes included, stays as it is: this is
// for reading, not a reversible encoding. A string with nothing to escape
// is returned as it is, without a copy.
func Printable(s string) string {
	i := 0
	for i < len(s) && safeASCII(s[i]) {
		i++
	}
	if i == len(s) {
		return s
	}
	b := make([]byte, 0, len(s)+16)
	b = append(b, s[:i]...)
	for i < len(s) {
		c := s[i]
		if safeASCII(c) {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = appendEscape(b, rune(c))
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\x`...)
			b = append(b, hex[c>>4], hex[c&15])
		case r <= 0x9f:
			b = appendEscape(b, r)
		default:
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

const hex = "0123456789abcdef"

// safeASCII: printable ASCII, and tab.
func safeASCII(c byte) bool { return c >= 0x20 && c < 0x7f || c == '\t' }

// appendEscape writes a C0 control, DEL or a C1 control as Go writes it.
func appendEscape(b []byte, r rune) []byte {
	switch r {
	case '\a':
		return append(b, `\a`...)
	case '\b':
		return append(b, `\b`...)
	case '\f':
		return append(b, `\f`...)
	case '\n':
		return append(b, `\n`...)
	case '\r':
		return append(b, `\r`...)
	case '\v':
		return append(b, `\v`...)
	}
	if r < 0x80 {
		return append(b, '\\', 'x', hex[r>>4], hex[r&15])
	}
	return append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&15])
}

// PrintableJSON makes JSON text safe for a terminal without changing what
// it means: encoding/json leaves DEL and C1 controls raw inside strings,
// and they become \u007f and \u0080–\u009f; a C0 control byte other than
// JSON's own white space becomes \u00HH, a byte that is not UTF-8 \ufffd
// (as encoding/json reads it). b is returned as it is when nothing needs
// it.
func PrintableJSON(b []byte) []byte {
	i := 0
	for i < len(b) && (safeASCII(b[i]) || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	out = append(out, b[:i]...)
	for i < len(b) {
		c := b[i]
		if safeASCII(c) || c == '\n' || c == '\r' {
			out = append(out, c)
			i++
			continue
		}
		r, n := rune(c), 1
		if c >= utf8.RuneSelf {
			r, n = utf8.DecodeRune(b[i:])
		}
		switch {
		case r == utf8.RuneError && n == 1:
			out = append(out, `\ufffd`...)
		case r <= 0x9f:
			out = append(out, '\\', 'u', '0', '0', hex[r>>4], hex[r&15])
		default:
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}

// safeLogfmt is logrus's logfmt formatter, which quotes values but writes
// keys as they are: a key with a control character is escaped.
type safeLogfmt struct{ *logrus.TextFormatter }

func (f safeLogfmt) Format(e *logrus.Entry) ([]byte, error) {
	for k := range e.Data {
		if Printable(k) != k {
			c := *e
			c.Data = make(logrus.Fields, len(e.Data))
			for k, v := range e.Data {
				c.Data[Printable(k)] = v
			}
			e = &c
			break
		}
	}
	return f.TextFormatter.Format(e)
}

// safeJSON is logrus's JSON formatter with PrintableJSON on its lines.
type safeJSON struct{ *logrus.JSONFormatter }

func (f safeJSON) Format(e *logrus.Entry) ([]byte, error) {
	b, err := f.JSONFormatter.Format(e)
	return PrintableJSON(b), err
}
