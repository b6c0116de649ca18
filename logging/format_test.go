package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

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
