package logging

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"time"

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
func NewFormatter(format string, color bool) logrus.Formatter {
	switch format {
	case FormatJSON:
		return &logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano}
	case FormatLogfmt:
		return &logrus.TextFormatter{DisableColors: true, FullTimestamp: true, TimestampFormat: time.RFC3339Nano}
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
			fmt.Fprintf(&b, "\x1b[1m%v\x1b[0m ", svc)
		} else {
			fmt.Fprintf(&b, "%v ", svc)
		}
	}
	b.WriteString(strings.TrimRight(e.Message, "\n"))
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if !hidden[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := fmt.Sprint(e.Data[k])
		if strings.ContainsAny(v, " \"=") {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}
