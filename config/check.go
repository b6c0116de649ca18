package config

import (
	"net"
	"net/url"
	"strconv"
	"time"
)

// CheckKind is how a readiness or health check probes a service.
type CheckKind string

const (
	CheckExec   CheckKind = "exec"   // run a command; exit 0 passes
	CheckTCP    CheckKind = "tcp"    // connect to Target (host:port)
	CheckHTTP   CheckKind = "http"   // GET Target; a 2xx status passes
	CheckFile   CheckKind = "file"   // Target exists
	CheckNotify CheckKind = "notify" // readiness only: sd_notify READY=1 on NOTIFY_SOCKET
)

// Check is a [services.NAME.ready] or [services.NAME.health] table.
type Check struct {
	Kind     CheckKind     // the one of exec, tcp, http, file, notify that is set; no default
	Exec     []string      // the command for CheckExec; same rules as command
	Target   string        // host:port for tcp, URL for http, path for file
	Interval time.Duration // default 1s for ready, 10s for health
	Timeout  time.Duration // default 1s for ready, 3s for health
	// Threshold is how many consecutive failures make a service unhealthy;
	// health only, default 3.
	Threshold int
}

// check reads a ready (health == false) or health table.
func (p *parser) check(t *table, health bool) *Check {
	c := &Check{Interval: time.Second, Timeout: time.Second}
	kinds := []CheckKind{CheckExec, CheckTCP, CheckHTTP, CheckFile}
	notifyInHealth := false
	if health {
		c.Interval, c.Timeout = 10*time.Second, 3*time.Second
		c.Threshold = t.integer("threshold", 3, 1)
		if notifyInHealth = t.has("notify"); notifyInHealth {
			t.errorf("notify", "notify is a readiness check only; a health check uses exec, tcp, http or file")
		}
	} else {
		kinds = append(kinds, CheckNotify)
		if t.has("threshold") {
			t.errorf("threshold", "threshold applies to health checks only; remove it from ready")
		}
	}
	c.Interval = t.duration("interval", c.Interval, true)
	c.Timeout = t.duration("timeout", c.Timeout, true)

	var found []string
	for _, k := range kinds {
		if !t.has(string(k)) {
			continue
		}
		found = append(found, string(k))
		c.Kind = k
		switch k {
		case CheckExec:
			c.Exec, _ = t.words("exec")
		case CheckTCP, CheckHTTP, CheckFile:
			var ok bool
			if c.Target, ok = t.lookupStr(string(k)); ok {
				if msg := badTarget(k, c.Target); msg != "" {
					t.errorf(string(k), "%s", msg)
				}
			}
		case CheckNotify:
			if !t.boolean("notify", true) {
				t.errorf("notify", "can only be true; remove the key for no notify check")
			}
		}
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	switch {
	case len(found) == 0 && !notifyInHealth: // that error already says what to use
		t.p.errorf(t.key, "needs one check: set one of %s", joinList(names, "or"))
	case len(found) > 1:
		t.p.errorf(t.key, "has %s: a check does exactly one thing, keep one of them", joinList(found, "and"))
	}
	t.done()
	return c
}

// badTarget says what is wrong with the target of a tcp, http or file check.
func badTarget(kind CheckKind, s string) string {
	switch kind {
	case CheckTCP:
		return badHostPort(s)
	case CheckHTTP:
		return badHTTPURL(s)
	}
	if s == "" {
		return "needs the path of the file to look for"
	}
	return ""
}

func badHostPort(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "must be host:port such as \"127.0.0.1:5432\" or \"[::1]:80\", got " + strconv.Quote(s)
	}
	if host == "" {
		return "needs a host before the port, such as \"127.0.0.1" + s + "\""
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "port " + strconv.Quote(port) + " must be a number from 1 to 65535"
	}
	return ""
}

func badHTTPURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "is not a valid URL: " + err.Error()
	case u.Scheme != "http":
		return "must be an http:// URL such as \"http://127.0.0.1:8080/healthz\", got " + strconv.Quote(s)
	case u.Hostname() == "":
		return "needs a host, such as \"http://127.0.0.1:8080/healthz\""
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "port " + strconv.Quote(port) + " must be a number from 1 to 65535"
		}
	}
	return ""
}
