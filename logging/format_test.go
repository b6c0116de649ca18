package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sirupsen/logrus"
)

func TestFormats(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 1, 7, 490000000, time.UTC)
	entry := func(l *logrus.Logger) *logrus.Entry {
		e := logrus.NewEntry(l).WithFields(logrus.Fields{"service": "db", "from": "running", "to": "restarting"})
		e.Time, e.Level, e.Message = at, logrus.InfoLevel, "running → restarting: exit code 3 after 1s; next start in 500ms"
		return e
	}
	l := logrus.New()
	cases := []struct {
		format string
		color  bool
		want   string
	}{
		{FormatText, false, "12:01:07 INFO  db running → restarting: exit code 3 after 1s; next start in 500ms\n"},
		{FormatText, true, "12:01:07 \x1b[36mINFO \x1b[0m \x1b[1mdb\x1b[0m running → restarting: exit code 3 after 1s; next start in 500ms\n"},
		{FormatLogfmt, true, `time="2026-11-29T12:01:07.49Z" level=info msg="running → restarting: exit code 3 after 1s; next start in 500ms" from=running service=db to=restarting` + "\n"},
	}
	for _, c := range cases {
		b, err := NewFormatter(c.format, c.color).Format(entry(l))
		if err != nil || string(b) != c.want {
			t.Errorf("%s (color %v):\n got %q\nwant %q", c.format, c.color, b, c.want)
		}
	}
	b, err := NewFormatter(FormatJSON, true).Format(entry(l))
	var fields map[string]string
	if err != nil || json.Unmarshal(b, &fields) != nil {
		t.Fatalf("json: %s %v", b, err)
	}
	for k, v := range map[string]string{"time": "2026-11-29T12:01:07.49Z", "level": "info", "service": "db", "from": "running", "to": "restarting"} {
		if fields[k] != v {
			t.Errorf("json %s = %q, want %q", k, fields[k], v)
		}
	}
	// Other fields follow the message; quoted when they need it.
	e := logrus.NewEntry(l).WithFields(logrus.Fields{"pid": 42, "why": "out of fds"})
	e.Time, e.Level, e.Message = at, logrus.WarnLevel, "could not run"
	var out bytes.Buffer
	b, _ = NewFormatter(FormatText, false).Format(e)
	out.Write(b)
	if got := out.String(); got != "12:01:07 WARN  could not run pid=42 why=\"out of fds\"\n" {
		t.Errorf("extra fields: %q", got)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Error("colour without a terminal")
	}
}

// TestFormatsEscapeControlCharacters is issue 18: a service's STATUS= text
// with terminal escapes is logged, in every format, without one raw
// control byte, DEL, C1 control or invalid UTF-8.
func TestFormatsEscapeControlCharacters(t *testing.T) {
	status := "\x1b]0;TITLE\a\x1b[2J\u009b31m\x7f\xff\ttab"
	l := logrus.New()
	e := logrus.NewEntry(l).WithFields(logrus.Fields{"service": "db\x1b[1m", "why": status, "k\x1b": "v"})
	e.Time, e.Level, e.Message = time.Date(2026, 11, 29, 12, 1, 7, 0, time.UTC), logrus.InfoLevel, "status: "+status
	raw := func(b []byte) bool {
		s := strings.TrimSuffix(string(b), "\n")
		return strings.ContainsAny(s, "\x1b\a\x7f\u009b\n") || !utf8.ValidString(s)
	}
	want := `12:01:07 INFO  db\x1b[1m status: \x1b]0;TITLE\a\x1b[2J\u009b31m\x7f\xff` + "\ttab" + ` k\x1b=v why="\x1b]0;TITLE\a\x1b[2J\u009b31m\x7f\xff\ttab"` + "\n"
	if b, _ := NewFormatter(FormatText, false).Format(e); string(b) != want {
		t.Errorf("text:\n got %q\nwant %q", b, want)
	}
	for _, format := range []string{FormatText, FormatLogfmt, FormatJSON} {
		b, err := NewFormatter(format, false).Format(e)
		if err != nil || raw(b) {
			t.Errorf("%s: %v %q", format, err, b)
		}
	}
	b, _ := NewFormatter(FormatJSON, false).Format(e)
	var fields map[string]string
	if err := json.Unmarshal(b, &fields); err != nil || fields["why"] != strings.ToValidUTF8(status, "\ufffd") {
		t.Errorf("json no longer reads back: %v %q", err, fields["why"])
	}
}

func TestPrintable(t *testing.T) {
	cases := map[string]string{
		"plain text, 100%":   "plain text, 100%",
		"tab\tstays":         "tab\tstays",
		"naïve → ünïcode ✓":  "naïve → ünïcode ✓",
		"\x00\x01\b\f\n\r\v": `\x00\x01\b\f\n\r\v`,
		"\x1b[31mred\x1b[0m": `\x1b[31mred\x1b[0m`,
		"del\x7f":            `del\x7f`,
		"c1 \u0080\u009f":    `c1 \u0080\u009f`,
		"\u00a0nbsp":         "\u00a0nbsp",
		"bad \xff\xc2":       `bad \xff\xc2`,
		`back\slash`:         `back\slash`,
		"\ufffd":             "\ufffd",
	}
	for in, want := range cases {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
	jsonCases := map[string]string{
		`{"a":"b"}` + "\n":             `{"a":"b"}` + "\n",
		"{\"a\":\"\x7f\u009b\u00e9\"}": `{"a":"\u007f\u009bé"}`,
		"{\"a\":\"\xff\x1b\"}":         `{"a":"\ufffd\u001b"}`,
	}
	for in, want := range jsonCases {
		if got := string(PrintableJSON([]byte(in))); got != want {
			t.Errorf("PrintableJSON(%q) = %q, want %q", in, got, want)
		}
	}
}
