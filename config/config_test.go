package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	testPasswd = `root:x:0:0:root:/root:/bin/sh
# a comment
+nisuser::::::
postgres:x:70:70:PostgreSQL:/var/lib/postgresql:/bin/sh
app:x:1000:1000::/home/app:/bin/sh
broken line
nobody:x:65534:65534:nobody:/:/sbin/nologin
`
	testGroup = `root:x:0:root
wheel:x:10:root,app
postgres:x:70:
app:x:1000:
audio:x:29:postgres,app
ssl:x:101:postgres
nogroup:x:65534:
`
)

// parse runs Parse with a fixed base environment and fake user database.
func parse(t *testing.T, src string, env map[string]string) (*Config, error) {
	t.Helper()
	dir := t.TempDir()
	passwd, group := filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	if err := os.WriteFile(passwd, []byte(testPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(group, []byte(testGroup), 0o644); err != nil {
		t.Fatal(err)
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	return Parse("tend.toml", []byte(src), lookup,
		WithBaseEnv([]string{"PATH=/usr/bin:/bin", "HOME=/root", "LANG=C"}),
		WithUserDB(passwd, group))
}

func mustParse(t *testing.T, src string, env map[string]string) *Config {
	t.Helper()
	cfg, err := parse(t, src, env)
	if err != nil {
		t.Fatalf("unexpected error:\n%v", err)
	}
	return cfg
}

// errorList returns the problems in err, failing the test if err is not *Errors.
func errorList(t *testing.T, err error) []Error {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want *Errors, got %T: %v", err, err)
	}
	return errs.List
}

// want is an expected problem: its line, key and a part of its message.
type want struct {
	line int
	key  string
	msg  string
}

func checkErrors(t *testing.T, err error, wants []want) {
	t.Helper()
	got := errorList(t, err)
	if len(got) != len(wants) {
		t.Errorf("got %d errors, want %d:\n%v", len(got), len(wants), err)
	}
	for i := range min(len(got), len(wants)) {
		g, w := got[i], wants[i]
		if g.File != "tend.toml" || g.Line != w.line || g.Key != w.key || !strings.Contains(g.Msg, w.msg) {
			t.Errorf("error %d = %q\n          want line %d, key %s, message containing %q", i, g.Error(), w.line, w.key, w.msg)
		}
	}
}

func TestDefaults(t *testing.T) {
	cfg := mustParse(t, "[services.web]\ncommand = \"nginx -g 'daemon off;'\"\n", nil)
	// /run/tend.sock as root (DefaultControlSocket has a test of its own).
	socket := DefaultControlSocket(func(string) (string, bool) { return "", false })
	wantCfg := &Config{
		Path:            "tend.toml",
		LogLevel:        "info",
		LogFormat:       "text",
		LogBuffer:       8192,
		ControlSocket:   socket.Path,
		DefaultSocket:   &socket,
		ShutdownTimeout: 9 * time.Second,
		ReadyTimeout:    60 * time.Second,
		Cgroups:         true,
		Order:           []string{"web"},
		Files:           []string{"tend.toml"},
		Services: map[string]*Service{"web": {
			Name:             "web",
			Command:          []string{"nginx", "-g", "daemon off;"},
			Env:              []string{"HOME=/root", "LANG=C", "PATH=/usr/bin:/bin"},
			Restart:          PolicyAlways,
			SuccessExitCodes: []int{0},
			MinUptime:        10 * time.Second,
			MaxRestarts:      -1,
			Backoff:          Backoff{Type: "fixed", Delay: time.Second},
			CrashLoop:        CrashLoop{MaxRestarts: 5, Window: 60 * time.Second, Backoff: 60 * time.Second},
			StopSignal:       unix.SIGTERM,
			StopTimeout:      5 * time.Second,
			Output:           "prefix",
		}},
	}
	if !reflect.DeepEqual(cfg, wantCfg) {
		t.Errorf("got  %+v\n%+v\nwant %+v\n%+v", cfg, cfg.Services["web"], wantCfg, wantCfg.Services["web"])
	}

	// The defaults must fit a whole shutdown into Docker's 10s grace.
	if cfg.ShutdownTimeout >= 10*time.Second {
		t.Errorf("default shutdown_timeout %v does not fit Docker's 10s stop grace", cfg.ShutdownTimeout)
	}

	empty := mustParse(t, "", nil)
	if len(empty.Services) != 0 || len(empty.Order) != 0 {
		t.Errorf("empty file: got services %v order %v", empty.Services, empty.Order)
	}
}

func TestEveryKey(t *testing.T) {
	src := `
log_level = "debug"
log_format = "json"
control_socket = "/tmp/tend.sock"
hostname = "vm1.example"
shutdown_timeout = "8s"
ready_timeout = "1m30s"

[services.migrate]
command = ["migrate", "up"]
oneshot = true
restart = "on-failure"

[services.db]
command = ["postgres", "-D", "/data"]
working_dir = "/var/lib/postgresql"
user = "postgres"
environment = { PGDATA = "/data", LANG = "en_US.UTF-8" }
restart = "unless-stopped"
success_exit_codes = [0, 143]
min_uptime = "30s"
max_restarts = 10
backoff = { type = "exponential", initial_delay = "500ms", max_delay = "1m", multiplier = 1.5 }
crash_loop = { max_restarts = 3, window = "2m", backoff = "5m" }
stop_signal = "SIGINT"
stop_timeout = "20s"
depends_on = ["migrate"]
essential = true
autostart = false
output = "/var/log/db.log"

[services.db.ready]
tcp = "127.0.0.1:5432"
interval = "500ms"
timeout = "2s"
threshold = 2
period = "20s"

[services.db.health]
http = "http://127.0.0.1:8080/healthz"
interval = "15s"
timeout = "4s"
threshold = 5
on_failure = "ignore"

[services.notifier]
command = "notifier --socket /run/n.sock"
stop_signal = 10
output = "inherit"
max_restarts = 0
backoff = { delay = "3s" }
ready = { notify = true }
health = { exec = ["check", "--quick"] }
`
	cfg := mustParse(t, src, nil)
	if cfg.LogLevel != "debug" || cfg.LogFormat != "json" || cfg.ControlSocket != "/tmp/tend.sock" ||
		cfg.Hostname != "vm1.example" || cfg.ShutdownTimeout != 8*time.Second || cfg.ReadyTimeout != 90*time.Second {
		t.Errorf("globals: %+v", cfg)
	}
	if want := []string{"migrate", "db", "notifier"}; !slices.Equal(cfg.Order, want) {
		t.Errorf("order = %v, want %v", cfg.Order, want)
	}

	db := cfg.Services["db"]
	wantDB := &Service{
		Name:             "db",
		Command:          []string{"postgres", "-D", "/data"},
		WorkingDir:       "/var/lib/postgresql",
		User:             "postgres",
		Credential:       &Credential{Uid: 70, Gid: 70, Groups: []uint32{70, 29, 101}},
		Environment:      map[string]string{"PGDATA": "/data", "LANG": "en_US.UTF-8"},
		Env:              []string{"HOME=/var/lib/postgresql", "LANG=en_US.UTF-8", "LOGNAME=postgres", "PATH=/usr/bin:/bin", "PGDATA=/data", "SHELL=/bin/sh", "USER=postgres"},
		Restart:          PolicyUnlessStopped,
		SuccessExitCodes: []int{0, 143},
		MinUptime:        30 * time.Second,
		MaxRestarts:      10,
		Backoff:          Backoff{Type: "exponential", InitialDelay: 500 * time.Millisecond, MaxDelay: time.Minute, Multiplier: 1.5},
		CrashLoop:        CrashLoop{MaxRestarts: 3, Window: 2 * time.Minute, Backoff: 5 * time.Minute},
		StopSignal:       unix.SIGINT,
		StopTimeout:      20 * time.Second,
		DependsOn:        []string{"migrate"},
		Essential:        true,
		Manual:           true,
		Output:           "/var/log/db.log",
		Ready:            &Check{Kind: CheckTCP, Target: "127.0.0.1:5432", Interval: 500 * time.Millisecond, Timeout: 2 * time.Second, Threshold: 2, Period: 20 * time.Second},
		Health:           &Check{Kind: CheckHTTP, Target: "http://127.0.0.1:8080/healthz", Interval: 15 * time.Second, Timeout: 4 * time.Second, Threshold: 5, OnFailure: FailIgnore},
	}
	if !reflect.DeepEqual(db, wantDB) {
		t.Errorf("db:\ngot  %+v\nwant %+v", db, wantDB)
	}

	m := cfg.Services["migrate"]
	if !m.Oneshot || m.Restart != PolicyOnFailure {
		t.Errorf("migrate: oneshot %v restart %q", m.Oneshot, m.Restart)
	}

	n := cfg.Services["notifier"]
	if !slices.Equal(n.Command, []string{"notifier", "--socket", "/run/n.sock"}) || n.StopSignal != unix.SIGUSR1 ||
		n.Output != "inherit" || n.MaxRestarts != 0 || n.Backoff != (Backoff{Type: "fixed", Delay: 3 * time.Second}) {
		t.Errorf("notifier: %+v", n)
	}
	if want := (&Check{Kind: CheckNotify, Interval: time.Second, Timeout: time.Second, Threshold: 3}); !reflect.DeepEqual(n.Ready, want) {
		t.Errorf("notifier ready = %+v, want %+v", n.Ready, want)
	}
	if want := (&Check{Kind: CheckExec, Exec: []string{"check", "--quick"}, Interval: 10 * time.Second, Timeout: 3 * time.Second, Threshold: 3, OnFailure: FailRestart}); !reflect.DeepEqual(n.Health, want) {
		t.Errorf("notifier health = %+v, want %+v", n.Health, want)
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "a b  c", want: []string{"a", "b", "c"}},
		{in: "  \tlead and trail \n", want: []string{"lead", "and", "trail"}},
		{in: "", want: nil},
		{in: `'single quoted' x`, want: []string{"single quoted", "x"}},
		{in: `'a\b "c"'`, want: []string{`a\b "c"`}},
		{in: `"double \"q\" \\ \$ \` + "`" + ` \n"`, want: []string{`double "q" \ $ ` + "` \\n"}},
		{in: `a\ b c\"d \'e`, want: []string{"a b", `c"d`, "'e"}},
		{in: `pre'mid'"post"`, want: []string{"premidpost"}},
		{in: `'' ""`, want: []string{"", ""}},
		{in: "a\\\nb", want: []string{"ab"}},
		{in: "\"x\\\ny\"", want: []string{"xy"}},
		{in: `$HOME ~ *.go`, want: []string{"$HOME", "~", "*.go"}},
		{in: `sh -c 'a | b; c && d'`, want: []string{"sh", "-c", "a | b; c && d"}},
		{in: `'unterminated`, wantErr: "unterminated single quote"},
		{in: `"unterminated \"`, wantErr: "unterminated double quote"},
		{in: `trailing \`, wantErr: "lone backslash"},
		{in: `a | b`, wantErr: `unquoted '|'`},
		{in: `a > out`, wantErr: `unquoted '>'`},
		{in: "a `b`", wantErr: "unquoted '`'"},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("splitWords(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"HOME": "/root", "EMPTY": "", "PORT": "8080", "SPACE": "a b"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "plain", want: "plain"},
		{in: "${HOME}/x", want: "/root/x"},
		{in: "${UNSET}", want: ""},
		{in: "a${UNSET}b", want: "ab"},
		{in: "${UNSET:-def}", want: "def"},
		{in: "${EMPTY:-def}", want: "def"},
		{in: "${PORT:-80}", want: "8080"},
		{in: "${UNSET:-}", want: ""},
		{in: "${UNSET:-${PORT}}", want: "8080"},
		{in: "${UNSET:-${NOPE:-x}y}z", want: "xyz"},
		{in: "${UNSET:-a:-b}", want: "a:-b"},
		{in: "$HOME $1 $$ $", want: "$HOME $1 $$ $"},
		{in: "$${HOME}", want: "${HOME}"},
		{in: "${SPACE}", want: "a b"},
		{in: "${HOME", wantErr: "unterminated"},
		{in: "${}", wantErr: "not a variable reference"},
		{in: "${1X}", wantErr: "not a variable reference"},
		{in: "${A-b}", wantErr: "not a variable reference"},
		{in: "${UNSET:-${BAD}", wantErr: "unterminated"},
		{in: strings.Repeat("${UNSET:-", 17) + "x" + strings.Repeat("}", 17), want: "x"},
		{in: strings.Repeat("${UNSET:-", 18) + "x" + strings.Repeat("}", 18), wantErr: "nests more than 16 defaults deep"},
		{in: "${HOME:-" + strings.Repeat("${UNSET:-", 30) + strings.Repeat("}", 31), want: "/root"}, // not expanded
	}
	for _, tt := range tests {
		got, err := expand(tt.in, lookup)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("expand(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestExpandEverywhere(t *testing.T) {
	src := `
control_socket = "${RUN:-/run}/tend.sock"
hostname = "${HOST}"
shutdown_timeout = "${GRACE:-7s}"

[services.web]
command = "${BIN}/web --port ${PORT}"
working_dir = "${DIR}"
user = "${WEB_USER}"
environment = { ADDR = ":${PORT}", HOME = "${UNSET}" }
output = "${LOGS}/web.log"
stop_signal = "${SIG:-HUP}"
restart = "${POLICY:-on-failure}"
depends_on = ["${DEP}"]
ready = { tcp = "127.0.0.1:${PORT}" }
health = { exec = ["${BIN}/probe", "${PORT}"] }

[services.db]
command = ["${BIN}/db", "${UNSET}", "${SPACE}"]
`
	env := map[string]string{"HOST": "box", "BIN": "/opt/bin", "PORT": "81", "DIR": "/srv", "WEB_USER": "app",
		"LOGS": "/var/log", "DEP": "db", "SPACE": "two words"}
	cfg := mustParse(t, src, env)
	if cfg.ControlSocket != "/run/tend.sock" || cfg.Hostname != "box" || cfg.ShutdownTimeout != 7*time.Second {
		t.Errorf("globals: %+v", cfg)
	}
	web := cfg.Services["web"]
	if !slices.Equal(web.Command, []string{"/opt/bin/web", "--port", "81"}) || web.WorkingDir != "/srv" ||
		web.User != "app" || web.Credential.Uid != 1000 || web.Output != "/var/log/web.log" ||
		web.StopSignal != unix.SIGHUP || web.Restart != PolicyOnFailure || !slices.Equal(web.DependsOn, []string{"db"}) ||
		web.Ready.Target != "127.0.0.1:81" || !slices.Equal(web.Health.Exec, []string{"/opt/bin/probe", "81"}) {
		t.Errorf("web: %+v", web)
	}
	// HOME set by environment wins over the user's; the rest is the user's.
	if !slices.Equal(web.Env, []string{"ADDR=:81", "HOME=", "LANG=C", "LOGNAME=app", "PATH=/usr/bin:/bin", "SHELL=/bin/sh", "USER=app"}) {
		t.Errorf("web env = %q", web.Env)
	}
	// Array elements stay whole, whatever the variable holds.
	if db := cfg.Services["db"]; !slices.Equal(db.Command, []string{"/opt/bin/db", "", "two words"}) {
		t.Errorf("db command = %q", db.Command)
	}

	_, err := parse(t, "[services.a]\ncommand = \"x ${BROKEN\"\nworking_dir = \"${}\"\n", nil)
	checkErrors(t, err, []want{
		{2, "services.a.command", "unterminated"},
		{3, "services.a.working_dir", "not a variable reference"},
	})
}

func TestManyErrors(t *testing.T) {
	src := `log_level = "verbose"
log_format = 3
shutdown_timeout = 9
ready_timeout = "soon"
hostname = "bad_host"

[services.db]
command = []
restart = "alwayz"
success_exit_codes = [0, 256]
min_uptime = "-1s"
max_restarts = -2
backoff = { type = "exponential", delay = "1s", max_delay = "1s", initial_delay = "2s", multiplier = 0.5 }
crash_loop = { max_restarts = 0, window = "0s", backoff = "x" }
stop_signal = "SIGFOO"
stop_timeout = 5
depends_on = "web"
essential = "yes"
output = ""
environment = { PORT = 5432 }

[services.db.ready]
tcp = "localhost"
on_failure = "ignore"

[services.db.health]
interval = "0s"

[services."bad name"]
user = "nosuchuser"
group = "nosuchgroup"
`
	_, err := parse(t, src, nil)
	checkErrors(t, err, []want{
		{1, "log_level", `unknown value "verbose" (use debug, info, warn or error)`},
		{2, "log_format", "must be a string, not an integer"},
		{3, "shutdown_timeout", `must be a duration string such as "500ms"`},
		{4, "ready_timeout", `"soon" is not a duration`},
		{5, "hostname", "not a valid hostname"},
		{8, "services.db.command", "is empty"},
		{9, "services.db.restart", `unknown restart policy "alwayz" (use always, on-failure, on-success, unless-stopped or never)`},
		{10, "services.db.success_exit_codes", "exit code 256 is out of range 0-255"},
		{11, "services.db.min_uptime", "must not be negative"},
		{12, "services.db.max_restarts", "must be 0 or more, got -2"},
		{13, "services.db.backoff.delay", "belongs to fixed backoff"},
		{13, "services.db.backoff.multiplier", "at least 1, got 0.5"},
		{13, "services.db.backoff.max_delay", "shorter than initial_delay"},
		{14, "services.db.crash_loop.max_restarts", "must be 1 or more"},
		{14, "services.db.crash_loop.window", "greater than zero"},
		{14, "services.db.crash_loop.backoff", `"x" is not a duration`},
		{15, "services.db.stop_signal", `unknown signal "SIGFOO"`},
		{16, "services.db.stop_timeout", "must be a duration string"},
		{17, "services.db.depends_on", "must be an array of service names, not a string"},
		{18, "services.db.essential", "must be true or false, not a string"},
		{19, "services.db.output", `must be "prefix", "inherit" or a file path`},
		{20, "services.db.environment.PORT", `must be a string, not an integer (quote it: PORT = "5432")`},
		{23, "services.db.ready.tcp", "must be host:port"},
		{24, "services.db.ready.on_failure", "health checks only"},
		{26, "services.db.health", "needs one check: set one of exec, tcp, http or file"},
		{27, "services.db.health.interval", "greater than zero"},
		{29, `services."bad name"`, "may use only letters, digits"},
		{29, `services."bad name".command`, "is required"},
		{30, `services."bad name".user`, `unknown user "nosuchuser"`},
	})
}

func TestUnknownKeys(t *testing.T) {
	src := `log_levle = "info"
[services.a]
command = "a"
comand = "b"
backoff = { type = "fixed", delay = "1s", jitter = "1s" }
crash_loop = { windw = "1m" }
ready = { tcp = "h:1", intervl = "1s" }
health = { tcp = "h:1", tries = 3 }
[services.a.extra]
x = 1
[service.b]
command = "b"
`
	_, err := parse(t, src, nil)
	checkErrors(t, err, []want{
		{1, "log_levle", `did you mean "log_level"?`},
		{4, "services.a.comand", `did you mean "command"?`},
		{5, "services.a.backoff.jitter", "unknown key (known here: delay, initial_delay, max_delay, multiplier, type)"},
		{6, "services.a.crash_loop.windw", `did you mean "window"?`},
		{7, "services.a.ready.intervl", `did you mean "interval"?`},
		{8, "services.a.health.tries", "unknown key"},
		{9, "services.a.extra", "unknown key"},
		{11, "service", `did you mean "services"?`},
	})
}

func TestOneshot(t *testing.T) {
	tests := []struct {
		restart string // "" = absent
		want    Policy
		wantErr string
	}{
		{"", PolicyNever, ""},
		{"never", PolicyNever, ""},
		{"on-failure", PolicyOnFailure, ""},
		{"always", "", `cannot use "always"`},
		{"on-success", "", `cannot use "on-success"`},
		{"unless-stopped", "", `cannot use "unless-stopped"`},
	}
	for _, tt := range tests {
		src := "[services.job]\ncommand = \"job\"\noneshot = true\n"
		if tt.restart != "" {
			src += "restart = \"" + tt.restart + "\"\n"
		}
		cfg, err := parse(t, src, nil)
		if tt.wantErr != "" {
			checkErrors(t, err, []want{{4, "services.job.restart", tt.wantErr}})
			continue
		}
		if err != nil {
			t.Errorf("restart %q: %v", tt.restart, err)
		} else if got := cfg.Services["job"].Restart; got != tt.want {
			t.Errorf("restart %q: got %q, want %q", tt.restart, got, tt.want)
		}
	}

	_, err := parse(t, "[services.job]\ncommand = \"job\"\noneshot = true\n[services.job.ready]\nfile = \"/x\"\n", nil)
	checkErrors(t, err, []want{{4, "services.job.ready", "a oneshot is ready when it exits cleanly"}})
}

func TestChecks(t *testing.T) {
	tests := []struct {
		table   string // "ready" or "health"
		body    string // the table's lines
		want    *Check
		wantErr string
	}{
		{"ready", `exec = "pg_isready -q"`, &Check{Kind: CheckExec, Exec: []string{"pg_isready", "-q"}, Interval: time.Second, Timeout: time.Second, Threshold: 3, Period: 10 * time.Second}, ""},
		{"ready", `file = "/run/ready"`, &Check{Kind: CheckFile, Target: "/run/ready", Interval: time.Second, Timeout: time.Second, Threshold: 3, Period: 10 * time.Second}, ""},
		{"ready", `tcp = "[::1]:80"`, &Check{Kind: CheckTCP, Target: "[::1]:80", Interval: time.Second, Timeout: time.Second, Threshold: 3, Period: 10 * time.Second}, ""},
		{"ready", `http = "http://localhost/"`, &Check{Kind: CheckHTTP, Target: "http://localhost/", Interval: time.Second, Timeout: time.Second, Threshold: 3, Period: 10 * time.Second}, ""},
		{"health", `file = "/x"`, &Check{Kind: CheckFile, Target: "/x", Interval: 10 * time.Second, Timeout: 3 * time.Second, Threshold: 3, OnFailure: FailRestart}, ""},
		{"health", "file = \"/x\"\non_failure = \"ignore\"", &Check{Kind: CheckFile, Target: "/x", Interval: 10 * time.Second, Timeout: 3 * time.Second, Threshold: 3, OnFailure: FailIgnore}, ""},
		{"health", "file = \"/x\"\non_failure = \"shutdown\"", &Check{Kind: CheckFile, Target: "/x", Interval: 10 * time.Second, Timeout: 3 * time.Second, Threshold: 3, OnFailure: FailShutdown}, ""},
		{"health", "file = \"/x\"\non_failure = \"kill\"", nil, `unknown on_failure "kill" (use restart, ignore or shutdown)`},
		{"health", "file = \"/x\"\nperiod = \"5s\"", nil, "period applies to readiness checks only"},
		{"ready", "file = \"/x\"\nperiod = \"0s\"\nthreshold = 1", &Check{Kind: CheckFile, Target: "/x", Interval: time.Second, Timeout: time.Second, Threshold: 1}, ""},
		{"ready", "file = \"/x\"\nperiod = \"30s\"", &Check{Kind: CheckFile, Target: "/x", Interval: time.Second, Timeout: time.Second, Threshold: 3, Period: 30 * time.Second}, ""},
		{"ready", "file = \"/x\"\nperiod = \"-1s\"", nil, "must not be negative"},
		{"ready", "file = \"/x\"\non_failure = \"ignore\"", nil, "on_failure applies to health checks only"},
		{"ready", "notify = true\nperiod = \"5s\"", nil, "a notify check is not probed again"},
		{"ready", `interval = "1s"`, nil, "needs one check: set one of exec, tcp, http, file or notify"},
		{"ready", "tcp = \"h:1\"\nhttp = \"http://h/\"\nfile = \"/f\"", nil, "has tcp, http and file: a check does exactly one thing"},
		{"health", "exec = [\"a\"]\ntcp = \"h:1\"", nil, "has exec and tcp"},
		{"health", `notify = true`, nil, "notify is a readiness check only"},
		{"ready", `notify = false`, nil, "can only be true"},
		{"ready", `notify = "yes"`, nil, "must be true or false"},
		{"ready", `tcp = ":80"`, nil, "needs a host"},
		{"ready", `tcp = "host:0"`, nil, `port "0" must be a number from 1 to 65535`},
		{"ready", `tcp = "host:http"`, nil, `port "http" must be a number`},
		{"ready", `tcp = "host:65536"`, nil, "1 to 65535"},
		{"ready", `http = "https://h/"`, nil, "must be an http:// URL"},
		{"ready", `http = "localhost:8080/health"`, nil, "must be an http:// URL"},
		{"ready", `http = "http:///path"`, nil, "needs a host"},
		{"ready", `http = "http://h:99999/"`, nil, "1 to 65535"},
		{"ready", `http = "http://h/%zz"`, nil, "not a valid URL"},
		{"ready", `file = ""`, nil, "needs the path of the file"},
		{"ready", `exec = []`, nil, "is empty"},
		{"ready", `exec = "a 'b"`, nil, "unterminated single quote"},
		{"ready", `exec = 5`, nil, "must be an array of strings or a string, not an integer"},
		{"ready", `tcp = 5`, nil, "must be a string, not an integer"},
		{"ready", `http = "${X"`, nil, "unterminated"},
		{"health", "file = \"/x\"\ntimeout = \"-1s\"", nil, "must not be negative"},
		{"health", "file = \"/x\"\nthreshold = 0", nil, "must be 1 or more"},
	}
	for _, tt := range tests {
		src := "[services.s]\ncommand = \"s\"\n[services.s." + tt.table + "]\n" + tt.body + "\n"
		cfg, err := parse(t, src, nil)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s { %s }: error %v, want %q", tt.table, tt.body, err, tt.wantErr)
			} else if errs := errorList(t, err); len(errs) != 1 || errs[0].Line < 3 {
				t.Errorf("%s { %s }: want one error with a line, got %v", tt.table, tt.body, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s { %s }: %v", tt.table, tt.body, err)
			continue
		}
		got := cfg.Services["s"].Ready
		if tt.table == "health" {
			got = cfg.Services["s"].Health
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s { %s } = %+v, want %+v", tt.table, tt.body, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		in      string
		want    Backoff
		wantErr string
	}{
		{`{}`, Backoff{Type: "fixed", Delay: time.Second}, ""},
		{`{ delay = "0s" }`, Backoff{Type: "fixed"}, ""},
		{`{ type = "exponential" }`, Backoff{Type: "exponential", InitialDelay: time.Second, MaxDelay: 30 * time.Second, Multiplier: 2}, ""},
		{`{ type = "exponential", multiplier = 3 }`, Backoff{Type: "exponential", InitialDelay: time.Second, MaxDelay: 30 * time.Second, Multiplier: 3}, ""},
		{`{ initial_delay = "1s" }`, Backoff{}, `belongs to exponential backoff: set type = "exponential"`},
		{`{ type = "linear", delay = "1s" }`, Backoff{}, `unknown backoff type "linear" (use fixed or exponential)`},
		{`{ type = "exponential", multiplier = inf }`, Backoff{}, "finite"},
		{`{ type = "exponential", multiplier = nan }`, Backoff{}, "finite"},
		{`{ type = "exponential", multiplier = "2" }`, Backoff{}, "must be a number, not a string"},
		{`"1s"`, Backoff{}, "must be a table, not a string"},
	}
	for _, tt := range tests {
		cfg, err := parse(t, "[services.s]\ncommand = \"s\"\nbackoff = "+tt.in+"\n", nil)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || len(errorList(t, err)) != 1 {
				t.Errorf("backoff %s: error %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("backoff %s: %v", tt.in, err)
		} else if got := cfg.Services["s"].Backoff; got != tt.want {
			t.Errorf("backoff %s = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestDependencies(t *testing.T) {
	t.Run("order", func(t *testing.T) {
		src := `
[services.web]
command = "w"
depends_on = ["api", "cache"]
[services.api]
command = "a"
depends_on = ["db", "migrate"]
[services.migrate]
command = "m"
depends_on = ["db"]
[services.db]
command = "d"
[services.cache]
command = "c"
[services.zz]
command = "z"
`
		cfg := mustParse(t, src, nil)
		want := []string{"cache", "db", "migrate", "api", "web", "zz"}
		if !slices.Equal(cfg.Order, want) {
			t.Errorf("order = %v, want %v", cfg.Order, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		src := `[services.a]
command = "a"
depends_on = ["b"]
[services.b]
command = "b"
depends_on = ["c"]
[services.c]
command = "c"
depends_on = ["a"]
[services.d]
command = "d"
depends_on = ["d", "nope", "e", "e"]
[services.e]
command = "e"
depends_on = ["f"]
[services.f]
command = "f"
depends_on = ["e"]
[services.g]
command = "g"
depends_on = ["a"]
`
		_, err := parse(t, src, nil)
		checkErrors(t, err, []want{
			{3, "services.a.depends_on", "dependency cycle: a -> b -> c -> a"},
			{12, "services.d.depends_on", `lists "e" twice`},
			{12, "services.d.depends_on", `service "d" cannot depend on itself`},
			{12, "services.d.depends_on", `unknown service "nope"`},
			{15, "services.e.depends_on", "dependency cycle: e -> f -> e"},
		})
	})
}

func TestCredential(t *testing.T) {
	gid := uint32(os.Getgid())
	uid := uint32(os.Getuid())
	tests := []struct {
		user, group string
		want        *Credential
		wantErr     string
	}{
		{"", "", nil, ""},
		{"postgres", "", &Credential{Uid: 70, Gid: 70, Groups: []uint32{70, 29, 101}}, ""},
		{"app", "", &Credential{Uid: 1000, Gid: 1000, Groups: []uint32{1000, 10, 29}}, ""},
		{"root", "", &Credential{Uid: 0, Gid: 0, Groups: []uint32{0, 10}}, ""},
		{"app", "audio", &Credential{Uid: 1000, Gid: 29, Groups: []uint32{29, 10}}, ""},
		{"app", "500", &Credential{Uid: 1000, Gid: 500, Groups: []uint32{500, 10, 29}}, ""},
		{"1000", "", &Credential{Uid: 1000, Gid: 1000, Groups: []uint32{1000, 10, 29}}, ""},
		{"4242", "", &Credential{Uid: 4242, Gid: gid, Groups: []uint32{gid}}, ""},
		{"4242", "4343", &Credential{Uid: 4242, Gid: 4343, Groups: []uint32{4343}}, ""},
		{"", "ssl", &Credential{Uid: uid, Gid: 101, Groups: []uint32{101}}, ""},
		{"nobody", "nogroup", &Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}}, ""},
		{"nisuser", "", nil, `unknown user "nisuser"`},
		{"ghost", "", nil, `unknown user "ghost"`},
		{"app", "ghosts", nil, `unknown group "ghosts"`},
		{"-1", "", nil, `unknown user "-1"`},
	}
	for _, tt := range tests {
		src := "[services.s]\ncommand = \"s\"\n"
		if tt.user != "" {
			src += "user = \"" + tt.user + "\"\n"
		}
		if tt.group != "" {
			src += "group = \"" + tt.group + "\"\n"
		}
		cfg, err := parse(t, src, nil)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("user %q group %q: error %v, want %q", tt.user, tt.group, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("user %q group %q: %v", tt.user, tt.group, err)
		} else if got := cfg.Services["s"].Credential; !reflect.DeepEqual(got, tt.want) {
			t.Errorf("user %q group %q: got %+v, want %+v", tt.user, tt.group, got, tt.want)
		}
	}

	// Without a passwd file names cannot be resolved, numbers still can.
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := Parse("tend.toml", []byte("[services.s]\ncommand = \"s\"\nuser = \"app\"\n"), nil, WithUserDB(missing, missing))
	checkErrors(t, err, []want{{3, "services.s.user", "use a numeric uid"}})
	cfg, err := Parse("tend.toml", []byte("[services.s]\ncommand = \"s\"\nuser = \"7\"\n"), nil, WithUserDB(missing, missing))
	if err != nil || !reflect.DeepEqual(cfg.Services["s"].Credential, &Credential{Uid: 7, Gid: gid, Groups: []uint32{gid}}) {
		t.Errorf("numeric user without passwd: %+v, %v", cfg, err)
	}
}

func TestSyntaxError(t *testing.T) {
	_, err := parse(t, "log_level = \"info\"\n[services.a]\ncommand = [\"a\",\n", nil)
	errs := errorList(t, err)
	if len(errs) != 1 || errs[0].Line != 3 || !strings.Contains(errs[0].Msg, "TOML syntax") {
		t.Errorf("got %q", err)
	}
	_, err = parse(t, "a = 1\na = 2\n", nil)
	if errs := errorList(t, err); len(errs) != 1 || errs[0].Line != 2 {
		t.Errorf("duplicate key: got %q", err)
	}
}

func TestTopLevelValues(t *testing.T) {
	_, err := parse(t, `control_socket = "/`+strings.Repeat("x", 120)+`"
services = 5
`, nil)
	checkErrors(t, err, []want{
		{1, "control_socket", "shorter than 108 bytes"},
		{2, "services", "must be a table, not an integer"},
	})
	_, err = parse(t, "[services]\nweb = \"nginx\"\n", nil)
	checkErrors(t, err, []want{{2, "services.web", "must be a table, not a string"}})

	cfg := mustParse(t, "control_socket = \"\"\n", nil)
	if cfg.ControlSocket != "" {
		t.Errorf("control_socket = %q, want disabled", cfg.ControlSocket)
	}
}

func TestErrorFormat(t *testing.T) {
	errs := &Errors{List: []Error{
		{File: "f.toml", Line: 3, Key: "services.db.restart", Msg: "bad"},
		{File: "f.toml", Key: "services.a.depends_on", Msg: "no line"},
		{File: "f.toml", Line: 1, Msg: "no key"},
	}}
	want := "f.toml:3: services.db.restart: bad\nf.toml: services.a.depends_on: no line\nf.toml:1: no key"
	if errs.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", errs.Error(), want)
	}
	var e Error
	if !errors.As(errs, &e) || e.Msg != "bad" {
		t.Errorf("errors.As found %+v", e)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tend.toml")
	if err := os.WriteFile(path, []byte("[services.a]\ncommand = \"a\"\nrestart = \"no\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, func(string) (string, bool) { return "", false })
	if errs := errorList(t, err); len(errs) != 1 || errs[0].File != path || errs[0].Line != 3 {
		t.Errorf("got %v", err)
	}
	if _, err := Load(path+".missing", nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: got %v", err)
	}
}

func TestReloadComparison(t *testing.T) {
	base := "[services.s]\ncommand = \"s\"\n"
	old := mustParse(t, base, nil).Services["s"]
	tests := []struct {
		extra            string
		equal, onlyRetry bool
	}{
		{"", true, false},
		{"depends_on = []\nenvironment = {}\nsuccess_exit_codes = [0]\n", true, false},
		{"restart = \"on-failure\"\n", false, true},
		{"backoff = { type = \"exponential\" }\n", false, true},
		{"crash_loop = { window = \"2m\" }\n", false, true},
		{"min_uptime = \"1s\"\nmax_restarts = 3\nsuccess_exit_codes = [0, 1]\n", false, true},
		{"stop_timeout = \"1s\"\n", false, false},
		{"restart = \"never\"\nenvironment = { A = \"b\" }\n", false, false},
		{"health = { file = \"/x\" }\n", false, false},
	}
	for _, tt := range tests {
		s := mustParse(t, base+tt.extra, nil).Services["s"]
		if got := s.Equal(old); got != tt.equal {
			t.Errorf("%q: Equal = %v, want %v", tt.extra, got, tt.equal)
		}
		if got := s.RestartSettingsOnlyChanged(old); got != tt.onlyRetry {
			t.Errorf("%q: RestartSettingsOnlyChanged = %v, want %v", tt.extra, got, tt.onlyRetry)
		}
	}
}

func TestOperatingKeys(t *testing.T) {
	cfg, err := parse(t, "log_format = \"logfmt\"\nlog_buffer = 65536\nmetrics_listen = \"127.0.0.1:9100\"\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogFormat != "logfmt" || cfg.LogBuffer != 65536 || cfg.MetricsListen != "127.0.0.1:9100" {
		t.Fatalf("got %+v", cfg)
	}
	_, err = parse(t, `log_format = "pretty"
log_buffer = 100
metrics_listen = "localhost"
[services.x]
command = "true"
`, nil)
	checkErrors(t, err, []want{
		{1, "log_format", `unknown value "pretty" (use text, logfmt or json)`},
		{2, "log_buffer", "must be 4096 or more, got 100"},
		{3, "metrics_listen", "is not host:port"},
	})
	for _, bad := range []string{`"127.0.0.1:0"`, `"127.0.0.1:http"`, `"example.com:9100"`} {
		if _, err := parse(t, "metrics_listen = "+bad+"\n", nil); err == nil {
			t.Errorf("metrics_listen = %s accepted", bad)
		}
	}
	if _, err := parse(t, "log_buffer = 2000000\n", nil); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("log_buffer of 2 MB: %v", err)
	}
}

// TestAutostartWarnings: autostart = false is valid, but a service that
// others depend on then holds them back too; tend check says so, with the
// key's line, and the config still loads.
func TestAutostartWarnings(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // substrings, one per warning, in order
	}{
		{"nobody depends on it", "[services.a]\ncommand = \"a\"\nautostart = false\n", nil},
		{"started by tend", "[services.a]\ncommand = \"a\"\n[services.b]\ncommand = \"b\"\ndepends_on = [\"a\"]\n", nil},
		{"a oneshot others need", "[services.migrate]\ncommand = \"m\"\noneshot = true\nautostart = false\n[services.web]\ncommand = \"w\"\ndepends_on = [\"migrate\"]\n",
			[]string{"tend.toml:4: services.migrate.autostart: warning: web depend on this oneshot, which waits for `tend ctl start migrate`"}},
		{"two dependants", "[services.db]\ncommand = \"d\"\nautostart = false\n[services.x]\ncommand = \"x\"\ndepends_on = [\"db\"]\n[services.y]\ncommand = \"y\"\ndepends_on = [\"db\"]\n",
			[]string{"services.db.autostart: warning: x and y depend on it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, tt.src, nil)
			if len(cfg.Warnings) != len(tt.want) {
				t.Fatalf("warnings %v, want %d", cfg.Warnings, len(tt.want))
			}
			for i, w := range tt.want {
				if got := cfg.Warnings[i].Error(); !strings.Contains(got, w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got, w)
				}
			}
		})
	}
}

// TestHealthListen: health_listen is checked as metrics_listen is, and the
// two are one listener when they name the same address; addresses that
// would collide are refused at the health_listen key.
func TestHealthListen(t *testing.T) {
	cases := []struct {
		name    string
		src     string
		shared  bool
		line    int    // of the error; 0 = none
		key     string // of the error
		wantErr string
	}{
		{name: "alone", src: `health_listen = "0.0.0.0:8080"`},
		{name: "every address", src: `health_listen = ":8080"`},
		{name: "beside metrics", src: "health_listen = \"0.0.0.0:8080\"\nmetrics_listen = \"127.0.0.1:9100\""},
		{name: "the same address", src: "health_listen = \"0.0.0.0:8080\"\nmetrics_listen = \"0.0.0.0:8080\"", shared: true},
		{name: "the same address written two ways", src: "health_listen = \"[::1]:8080\"\nmetrics_listen = \"[0:0:0:0:0:0:0:1]:8080\"", shared: true},
		{name: "localhost is 127.0.0.1", src: "health_listen = \"localhost:8080\"\nmetrics_listen = \"127.0.0.1:8080\"", shared: true},
		{name: "two addresses, one port", src: "health_listen = \"127.0.0.1:8080\"\nmetrics_listen = \"127.0.0.2:8080\""},
		{name: "a wildcard and an address on one port", src: "metrics_listen = \"127.0.0.1:8080\"\nhealth_listen = \"0.0.0.0:8080\"",
			line: 2, key: "health_listen", wantErr: `"0.0.0.0:8080" and metrics_listen "127.0.0.1:8080" share port 8080 but not the address`},
		{name: "two wildcards on one port", src: "health_listen = \":8080\"\nmetrics_listen = \"0.0.0.0:8080\"",
			line: 1, key: "health_listen", wantErr: "write the same address in both"},
		{name: "not host:port", src: `health_listen = "8080"`, line: 1, key: "health_listen", wantErr: `"8080" is not host:port (for example "127.0.0.1:9100")`},
		{name: "port 0", src: `health_listen = "0.0.0.0:0"`, line: 1, key: "health_listen", wantErr: `port "0" is not a number from 1 to 65535`},
		{name: "a named port", src: `health_listen = "0.0.0.0:http"`, line: 1, key: "health_listen", wantErr: `port "http" is not a number`},
		{name: "a host name", src: `health_listen = "pod.example.com:8080"`, line: 1, key: "health_listen", wantErr: "must be an IP address or localhost"},
		{name: "not a string", src: `health_listen = 8080`, line: 1, key: "health_listen", wantErr: "must be a string"},
		{name: "a typo", src: `health_listn = ":8080"`, line: 1, key: "health_listn", wantErr: `did you mean "health_listen"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(t, tc.src+"\n", nil)
			if tc.wantErr != "" {
				checkErrors(t, err, []want{{tc.line, tc.key, tc.wantErr}})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.SharedListener() != tc.shared {
				t.Errorf("SharedListener() = %v, want %v", cfg.SharedListener(), tc.shared)
			}
		})
	}
}

// TestStopCommandKey: stop_command takes command's forms and errors.
func TestStopCommandKey(t *testing.T) {
	tests := []struct {
		value   string
		want    []string
		wantErr string
	}{
		{`"pg_ctl stop -m fast"`, []string{"pg_ctl", "stop", "-m", "fast"}, ""},
		{`["nginx", "-s", "quit"]`, []string{"nginx", "-s", "quit"}, ""},
		{`5`, nil, "must be an array of strings or a string, not an integer"},
		{`[]`, nil, "is empty"},
		{`"a 'b"`, nil, "unterminated single quote"},
	}
	for _, tt := range tests {
		src := "[services.s]\ncommand = \"s\"\nstop_command = " + tt.value + "\n"
		cfg, err := parse(t, src, nil)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "tend.toml:3: services.s.stop_command") {
				t.Errorf("stop_command = %s: error %v, want tend.toml:3 and %q", tt.value, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("stop_command = %s: %v", tt.value, err)
			continue
		}
		if got := cfg.Services["s"].StopCommand; !slices.Equal(got, tt.want) {
			t.Errorf("stop_command = %s: %q, want %q", tt.value, got, tt.want)
		}
	}
	if cfg := mustParse(t, "[services.s]\ncommand = \"s\"\n", nil); cfg.Services["s"].StopCommand != nil {
		t.Errorf("default stop_command %q, want none", cfg.Services["s"].StopCommand)
	}
}
