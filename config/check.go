package config

import (
	"net"
	"net/url"
	"slices"
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

// OnFailure is what a health check that failed threshold times does.
type OnFailure string

const (
	FailRestart  OnFailure = "restart"  // stop the run; its end is unclean and the restart policy decides (the default)
	FailIgnore   OnFailure = "ignore"   // report it (status, events, metrics, /readyz) and keep probing; nothing is stopped
	FailShutdown OnFailure = "shutdown" // shut tend down, exit status 1 (Pebble's on-check-failure: shutdown)
)

var onFailures = []string{string(FailRestart), string(FailIgnore), string(FailShutdown)}

// Check is a [services.NAME.ready] or [services.NAME.health] table.
type Check struct {
	Kind     CheckKind     // the one of exec, tcp, http, file, notify that is set; no default
	Exec     []string      // the command for CheckExec; same rules as command
	Target   string        // host:port for tcp, URL for http, path for file
	Interval time.Duration // default 1s for ready, 10s for health
	Timeout  time.Duration // default 1s for ready, 3s for health
	// Threshold is how many consecutive failures make a service unhealthy,
	// or a ready one not ready again; default 3.
	Threshold int
	// Period is how often a ready service's readiness is probed again
	// (Kubernetes' readiness probe keeps probing too); ready only, default
	// 10s, 0 = never (ready stays yes once reached). A notify check has
	// none: the service reports by itself.
	Period time.Duration
	// OnFailure is what a failed health check does; health only, default
	// restart.
	OnFailure OnFailure
}

// check reads a ready (health == false) or health table.
func (p *parser) check(t *table, health bool) *Check {
	c := &Check{Interval: time.Second, Timeout: time.Second}
	kinds := []CheckKind{CheckExec, CheckTCP, CheckHTTP, CheckFile}
	notifyInHealth := false
	c.Threshold = t.integer("threshold", 3, 1)
	if health {
		c.Interval, c.Timeout = 10*time.Second, 3*time.Second
		c.OnFailure = FailRestart
		if v, ok := t.lookupStr("on_failure"); ok {
			if slices.Contains(onFailures, v) {
				c.OnFailure = OnFailure(v)
			} else {
				t.errorf("on_failure", "unknown on_failure %q (use %s)", v, joinList(onFailures, "or"))
			}
		}
		if notifyInHealth = t.has("notify"); notifyInHealth {
			t.errorf("notify", "notify is a readiness check only; a health check uses exec, tcp, http or file")
		}
		if t.has("period") {
			t.errorf("period", "period applies to readiness checks only; a health check is probed every interval")
		}
	} else {
		kinds = append(kinds, CheckNotify)
		c.Period = t.duration("period", 10*time.Second, false)
		if t.has("on_failure") {
			t.errorf("on_failure", "on_failure applies to health checks only: a readiness check that fails again only reports not ready")
		}
		if t.has("notify") && t.has("period") {
			t.errorf("period", "a notify check is not probed again: the service reports READY=1 by itself; remove period")
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
	if c.Kind == CheckNotify {
		c.Period = 0 // the service reports by itself; nothing to probe again
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
