// Package config reads and validates tend's supervisor config file (SPEC
// section 4). Load reports every problem in a file at once, each with the
// file, line and key, so that `tend check` can show them all.
package config

import (
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"
)

// Config is a whole config file.
type Config struct {
	Path            string              // the main file
	LogLevel        string              // debug|info|warn|error; default "info"
	LogFormat       string              // text|logfmt|json; default "text"
	LogBuffer       int                 // bytes of recent output kept per service; default 8192
	ControlSocket   string              // default DefaultControlSocket's; "" disables the control API
	DefaultSocket   *SocketPlace        // how ControlSocket was chosen when control_socket is absent; nil when it is set
	MetricsListen   string              // host:port for GET /metrics over TCP; default "" (off)
	HealthListen    string              // host:port for GET /livez and /readyz over TCP; default "" (off)
	Hostname        string              // VM mode only; default "" (leave the hostname alone)
	ShutdownTimeout time.Duration       // default 9s, so shutdown fits Docker's 10s stop grace
	ReadyTimeout    time.Duration       // default 60s
	Cgroups         bool                // default true: each service in a cgroup v2 child of tend's, where tend can make one
	EnvFiles        []EnvFile           // the top-level env_file, for every service (each Service.EnvFiles begins with it); default none
	Services        map[string]*Service // by name; default none
	Order           []string            // service names in dependency order, ties broken by name
	Warnings        []Error             // valid but probably not meant (tend check prints them, tend logs them); default none
	Files           []string            // the files read: Path, then those it includes, in the order read
}

// Policy says when a service that exited on its own is started again.
type Policy string

const (
	PolicyAlways        Policy = "always"
	PolicyOnFailure     Policy = "on-failure"
	PolicyOnSuccess     Policy = "on-success"
	PolicyUnlessStopped Policy = "unless-stopped"
	PolicyNever         Policy = "never"
)

var policies = []string{string(PolicyAlways), string(PolicyOnFailure), string(PolicyOnSuccess), string(PolicyUnlessStopped), string(PolicyNever)}

// Service is one [services.NAME] table.
type Service struct {
	Name             string            // the NAME in [services.NAME]
	Command          []string          // required; program and arguments
	WorkingDir       string            // default "" = tend's own
	User             string            // as written; default "" = tend's own
	Group            string            // as written; default "" = the user's primary group, or tend's own
	Credential       *Credential       // resolved User and Group; nil when both are empty
	Environment      map[string]string // as written, after ${VAR} expansion; default empty
	EnvFiles         []EnvFile         // the top-level env_file, then the service's own, in that order; read at each start (StartEnv); default none
	Env              []string          // the environment without the env files: tend's own, the user's HOME/USER/LOGNAME/SHELL, Environment; sorted by name; may be shared, never change it in place. A start uses StartEnv
	Restart          Policy            // default always; for a oneshot, never
	SuccessExitCodes []int             // exit codes that count as clean; default [0]
	MinUptime        time.Duration     // a run this long resets the failure count; default 10s
	MaxRestarts      int               // total automatic restarts; default -1 = unlimited; 0 = none
	Backoff          Backoff           // default fixed, 1s
	CrashLoop        CrashLoop         // default {MaxRestarts: 5, Window: 60s, Backoff: 60s}
	StopSignal       unix.Signal       // default SIGTERM
	StopTimeout      time.Duration     // wait after StopSignal (or StopCommand) before SIGKILL; default 5s
	StopCommand      []string          // run instead of sending StopSignal (pg_ctl stop -m fast); same rules as command; default none
	DependsOn        []string          // services that must be ready first; default none
	Essential        bool              // giving up shuts tend down; default false
	Oneshot          bool              // runs to completion once; default false
	Manual           bool              // autostart = false: idle until an operator starts it (`tend ctl start`); default false
	Output           string            // "prefix" (default), "inherit", or a file path to append to
	OutputMaxSize    int64             // output_max_size: rotate the output file before it passes this many bytes; 0 = never (default)
	OutputBackups    int               // output_backups: rotated files kept (PATH.1 newest … PATH.N oldest); default 5; 0 = the file is truncated instead
	Ready            *Check            // readiness check; nil when absent
	Health           *Check            // liveness check; nil when absent

	// What the process starts with (servicelimits.go); only in the child.
	Limits      []Rlimit // limits = { nofile = 1024, ... }, sorted by name; default none (tend's own)
	Umask       *int     // umask = "027"; default nil = tend's own
	Nice        *int     // nice, -20..19; default nil = tend's own
	OOMScoreAdj *int     // oom_score_adj, -1000..1000; default nil = tend's own

	// The limits of its cgroup, in cgroup mode; 0 = no limit (tend's default).
	MemoryMax int64   // memory_max, bytes (memory.max)
	CPUMax    float64 // cpu_max, CPUs (cpu.max: 1.5 = "150000 100000")
	PidsMax   int64   // pids_max (pids.max)
}

// Backoff is the delay before an automatic restart.
type Backoff struct {
	Type         string        // "fixed" (default) or "exponential"
	Delay        time.Duration // fixed only; default 1s
	InitialDelay time.Duration // exponential only; default 1s
	MaxDelay     time.Duration // exponential only; default 30s, never below InitialDelay
	Multiplier   float64       // exponential only; default 2.0, at least 1
}

// CrashLoop pauses a service that restarts too often.
type CrashLoop struct {
	MaxRestarts int           // restarts inside Window that trigger the pause; default 5, at least 1
	Window      time.Duration // default 60s, more than 0
	Backoff     time.Duration // length of the pause; default 60s
}

// Option adjusts what Parse and Load take from the running system.
type Option func(*options)

type options struct {
	baseEnv               []string
	passwdFile, groupFile string
	uid, gid              uint32
	noIncludes            bool // the fuzzer's: an include entry is an error, no file is read
}

// WithBaseEnv sets the environment that services inherit (each entry
// "KEY=VALUE"); the default is os.Environ().
func WithBaseEnv(env []string) Option { return func(o *options) { o.baseEnv = env } }

// WithUserDB sets the files that user and group names are looked up in; the
// defaults are /etc/passwd and /etc/group.
func WithUserDB(passwd, group string) Option {
	return func(o *options) { o.passwdFile, o.groupFile = passwd, group }
}

// Load reads and validates the file at path and the files it includes.
// env looks up the variables used by ${VAR} in string values; nil means
// os.LookupEnv. A main file that cannot be read gives the os error; an
// invalid one, or one larger than MaxSize, gives *Errors, as does any
// problem in an included file (one that cannot be read too). A Loader does
// the same, and reuses what did not change since its last load.
func Load(path string, env func(string) (string, bool), opts ...Option) (*Config, error) {
	return NewLoader(path, env, opts...).Load()
}

// Parse validates data as the config file path (used in error messages,
// and to find the files it includes, which are read from disk).
// When the config is invalid the error is *Errors, listing every problem.
// Data over MaxSize or nested deeper than MaxDepth is refused before it is
// decoded.
func Parse(path string, data []byte, env func(string) (string, bool), opts ...Option) (*Config, error) {
	return NewLoader(path, env, opts...).load(data, statID(path), true)
}

// parseUnlimited is Parse without the limits of the main file.
func parseUnlimited(path string, data []byte, env func(string) (string, bool), opts ...Option) (*Config, error) {
	return NewLoader(path, env, opts...).load(data, statID(path), false)
}

// statID is the identity of the file at path, if there is one.
func statID(path string) fileID {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return fileID{}
	}
	return fileID{uint64(st.Dev), st.Ino}
}

// warnings reports what is valid but probably not meant: a service that
// waits for an operator (autostart = false) while others depend on it.
// They wait too, for as long as nobody starts it.
func (p *parser) warnings(cfg *Config) {
	dependants := map[string][]string{}
	for _, name := range cfg.Order {
		for _, d := range cfg.Services[name].DependsOn {
			dependants[d] = append(dependants[d], name)
		}
	}
	for _, name := range cfg.Order {
		s := cfg.Services[name]
		if !s.Manual || len(dependants[name]) == 0 {
			continue
		}
		what := "it"
		if s.Oneshot {
			what = "this oneshot"
		}
		p.errorf(toml.Key{"services", name, "autostart"}, "warning: %s depend on %s, which waits for `tend ctl start %s`; until then they are not started either",
			joinList(dependants[name], "and"), what, name)
	}
}

// Bounds of log_buffer, the bytes of recent output kept per service.
const (
	DefaultLogBuffer = 8 << 10
	MinLogBuffer     = 4 << 10
	MaxLogBuffer     = 1 << 20
)

// badListen says what is wrong with a metrics_listen or health_listen
// address ("" is off).
func badListen(addr string) string {
	if addr == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (for example \"127.0.0.1:9100\")", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("port %q is not a number from 1 to 65535", port)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Sprintf("host %q must be an IP address or localhost: tend does not resolve names at start", host)
	}
	return ""
}

// SharedListener tells whether health_listen and metrics_listen name the
// same address, which tend then serves with one listener (/livez,
// /readyz and /metrics); both must be set and valid.
func (c *Config) SharedListener() bool {
	same, _ := listenClash(c.HealthListen, c.MetricsListen)
	return same
}

// listenClash compares two valid listen addresses: the same address
// (same is true, and one listener serves both), or two that cannot both
// be bound (msg says so): the same port with one host a wildcard ("",
// 0.0.0.0, ::) that the other is not written as, since a wildcard takes
// the port on every address. "localhost" is 127.0.0.1, as a listen on it
// binds.
func listenClash(health, metrics string) (same bool, msg string) {
	if health == "" || metrics == "" {
		return false, ""
	}
	hh, hp, _ := net.SplitHostPort(health)
	mh, mp, _ := net.SplitHostPort(metrics)
	canon := func(host string) string {
		if host == "localhost" {
			return "127.0.0.1"
		}
		if ip := net.ParseIP(host); ip != nil {
			return ip.String()
		}
		return host
	}
	hh, mh = canon(hh), canon(mh)
	hn, _ := strconv.Atoi(hp)
	mn, _ := strconv.Atoi(mp)
	switch wildcard := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }; {
	case hn != mn:
		return false, ""
	case hh == mh:
		return true, ""
	case wildcard(hh) || wildcard(mh):
		return false, fmt.Sprintf("%q and metrics_listen %q share port %d but not the address, and cannot both be bound: "+
			"write the same address in both to serve /livez, /readyz and /metrics on one listener, or use another port", health, metrics, hn)
	}
	return false, ""
}

// DefaultShutdownTimeout is shutdown_timeout unless the config says
// otherwise: the whole shutdown fits in the 10 s that docker stop gives
// before its SIGKILL.
const DefaultShutdownTimeout = 9 * time.Second

// ControlSocket returns the control_socket of the config file at path ("" when
// the control API is disabled), with ${VAR} expanded from lookup (nil means
// os.LookupEnv), as Load would; when the key is absent, the default
// (DefaultControlSocket) and how it was chosen. It decodes only the
// top-level keys, which come before the first [table], so that `tend ctl`
// does not pay for every service; the file is still refused if it is
// larger than MaxSize, or if the top-level keys nest deeper than MaxDepth
// or are not valid TOML.
func ControlSocket(path string, lookup func(string) (string, bool)) (string, *SocketPlace, error) {
	data, err := readLimited(path)
	if err != nil {
		return "", nil, err
	}
	return controlSocket(path, data, lookup)
}

// controlSocket is ControlSocket for data read from path.
func controlSocket(path string, data []byte, lookup func(string) (string, bool)) (string, *SocketPlace, error) {
	end, err := checkLimits(path, data, true)
	if err != nil {
		return "", nil, err
	}
	top := data[:end]
	root, err := decode(top)
	if err != nil {
		return "", nil, syntaxError(path, err)
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	p := &parser{main: &source{path: path, data: top}, env: lookup}
	sock, place := (&table{p: p, src: p.main, m: root}).controlSocket()
	if err := p.result(); err != nil {
		return "", nil, err
	}
	return sock, place, nil
}

// controlSocket reads control_socket from the top-level table: the path
// ("" turns the control API off), or, when the key is absent, the default
// and how it was chosen, for tend's own environment and effective uid.
func (t *table) controlSocket() (string, *SocketPlace) {
	if !t.has("control_socket") {
		place := DefaultControlSocket(t.p.env)
		return place.Path, &place
	}
	s := t.str("control_socket", "")
	if n := len(s); n > maxSocketPath {
		t.errorf("control_socket", "is %d bytes long; a unix socket path must be shorter than 108 bytes", n)
	}
	return s, nil
}

// globals reads tend's own settings from the main file's top-level table.
func (p *parser) globals(t *table, cfg *Config) {
	cfg.LogLevel = t.oneOf("log_level", "info", "debug", "info", "warn", "error")
	cfg.LogFormat = t.oneOf("log_format", "text", "text", "logfmt", "json")
	cfg.LogBuffer = t.integer("log_buffer", DefaultLogBuffer, MinLogBuffer)
	cfg.ControlSocket, cfg.DefaultSocket = t.controlSocket()
	cfg.MetricsListen = t.str("metrics_listen", "")
	cfg.HealthListen = t.str("health_listen", "")
	cfg.Hostname = t.str("hostname", "")
	cfg.ShutdownTimeout = t.duration("shutdown_timeout", DefaultShutdownTimeout, true)
	cfg.ReadyTimeout = t.duration("ready_timeout", 60*time.Second, true)
	cfg.Cgroups = t.boolean("cgroups", true)
	cfg.EnvFiles = p.envFiles(t)
	p.globalEnvFiles = cfg.EnvFiles
	if msg := badHostname(cfg.Hostname); msg != "" {
		t.errorf("hostname", "%s", msg)
	}
	if cfg.LogBuffer > MaxLogBuffer {
		t.errorf("log_buffer", "is %d bytes; at most %d (1 MiB) per service", cfg.LogBuffer, MaxLogBuffer)
	}
	badMetrics, badHealth := badListen(cfg.MetricsListen), badListen(cfg.HealthListen)
	if badMetrics != "" {
		t.errorf("metrics_listen", "%s", badMetrics)
	}
	if badHealth != "" {
		t.errorf("health_listen", "%s", badHealth)
	}
	if badMetrics == "" && badHealth == "" {
		if _, msg := listenClash(cfg.HealthListen, cfg.MetricsListen); msg != "" {
			t.errorf("health_listen", "%s", msg)
		}
	}
}

func (p *parser) service(name string, t *table) *Service {
	s := &Service{
		Name:             name,
		WorkingDir:       t.str("working_dir", ""),
		User:             t.str("user", ""),
		Group:            t.str("group", ""),
		Environment:      p.environment(t),
		EnvFiles:         p.serviceEnvFiles(t),
		SuccessExitCodes: p.exitCodes(t),
		MinUptime:        t.duration("min_uptime", 10*time.Second, false),
		MaxRestarts:      t.integer("max_restarts", -1, 0),
		Backoff:          p.backoff(t.sub("backoff")),
		CrashLoop:        p.crashLoop(t.sub("crash_loop")),
		StopSignal:       t.signal("stop_signal", unix.SIGTERM),
		StopTimeout:      t.duration("stop_timeout", 5*time.Second, false),
		Essential:        t.boolean("essential", false),
		Oneshot:          t.boolean("oneshot", false),
		Manual:           !t.boolean("autostart", true),
		Output:           t.str("output", "prefix"),
	}
	t.has("override") // read where the files are merged (merge.go)
	var ok bool
	if s.Command, ok = t.words("command"); !ok && !t.has("command") {
		t.missing("command", "is required: the program to run, as [\"prog\", \"arg\"] or \"prog arg\"")
	}
	if t.has("stop_command") {
		s.StopCommand, _ = t.words("stop_command")
	}

	s.Restart = PolicyAlways
	if s.Oneshot {
		s.Restart = PolicyNever
	}
	if r, ok := t.lookupStr("restart"); ok {
		switch {
		case !slices.Contains(policies, r):
			t.errorf("restart", "unknown restart policy %q (use %s)", r, joinList(policies, "or"))
		case s.Oneshot && r != string(PolicyNever) && r != string(PolicyOnFailure):
			// Restarting after a clean exit would make a oneshot run forever.
			t.errorf("restart", "a oneshot runs to completion once, so it cannot use %q: use never (the default) or on-failure to retry", r)
		default:
			s.Restart = Policy(r)
		}
	}

	if v, ok := t.get("depends_on"); ok {
		if arr, ok := v.([]any); !ok {
			t.typeError("depends_on", "an array of service names", v)
		} else if s.DependsOn, ok = t.stringArray("depends_on", arr); ok {
			seen := make(map[string]bool, len(s.DependsOn))
			for _, d := range s.DependsOn {
				if seen[d] {
					t.errorf("depends_on", "lists %q twice", d)
				}
				seen[d] = true
			}
		}
	}
	if len(s.DependsOn) == 0 {
		s.DependsOn = nil // so that `depends_on = []` equals no depends_on on reload
	}

	p.serviceLimits(t, s)

	if t.has("output") && s.Output == "" {
		t.errorf("output", "must be \"prefix\", \"inherit\" or a file path")
	}
	s.OutputMaxSize, s.OutputBackups = p.rotation(t, s.Output)

	if rt := t.sub("ready"); rt != nil {
		s.Ready = p.check(rt, false)
		if s.Oneshot {
			rt.problem("a oneshot is ready when it exits cleanly; remove the ready check")
		}
	}
	if ht := t.sub("health"); ht != nil {
		s.Health = p.check(ht, true)
	}

	var acct *passwdEntry
	s.Credential, acct = p.credential(t, s.User, s.Group)
	s.Env = p.envBase().serviceEnv(accountEnv(s.User, acct), s.Environment)
	t.done()
	return s
}

// environment reads the environment table; every value must be a string.
func (p *parser) environment(t *table) map[string]string {
	et := t.sub("environment")
	if et == nil {
		return nil
	}
	env := make(map[string]string, len(et.m))
	for _, k := range slices.Sorted(maps.Keys(et.m)) {
		if msg := badEnvName(k); msg != "" {
			et.errorf(k, "%s", msg)
		}
		v := et.m[k]
		if _, ok := v.(string); !ok {
			et.errorf(k, "must be a string, not %s (quote it: %s = \"%v\")", typeName(v), k, v)
			continue
		}
		if s, ok := et.expand(k, v); ok {
			env[k] = s
		}
	}
	if len(env) == 0 {
		return nil // so that `environment = {}` equals no environment on reload
	}
	return env
}

// badEnvName says what is wrong with the name of an environment variable
// ("" when nothing is): it reaches the kernel as part of a "NAME=value"
// C string, so it cannot be empty, hold a "=" (the value would start
// there) or a NUL (the string would end there).
func badEnvName(k string) string {
	switch {
	case k == "":
		return "an environment variable needs a name; give it one, or remove the empty key"
	case strings.IndexByte(k, 0) >= 0:
		return "the name " + badNUL(k)
	case strings.Contains(k, "="):
		return fmt.Sprintf("the name %q has a \"=\", where the value would begin; rename the variable without it", k)
	}
	return ""
}

func (p *parser) exitCodes(t *table) []int {
	codes := []int{0}
	v, ok := t.get("success_exit_codes")
	if !ok {
		return codes
	}
	arr, ok := v.([]any)
	if !ok {
		t.typeError("success_exit_codes", "an array of exit codes such as [0, 143]", v)
		return codes
	}
	if len(arr) == 0 {
		t.errorf("success_exit_codes", "is empty; list at least one exit code, such as [0]")
		return codes
	}
	codes = codes[:0]
	for _, e := range arr {
		n, ok := e.(int64)
		switch {
		case !ok:
			t.errorf("success_exit_codes", "every element must be an integer, found %s", typeName(e))
			return []int{0}
		case n < 0 || n > 255:
			t.errorf("success_exit_codes", "exit code %d is out of range 0-255", n)
		default:
			codes = append(codes, int(n))
		}
	}
	return codes
}

func (p *parser) backoff(t *table) Backoff {
	fixed := Backoff{Type: "fixed", Delay: time.Second}
	if t == nil {
		return fixed
	}
	defer t.done()
	var b Backoff
	switch typ := t.str("type", "fixed"); typ {
	case "fixed":
		b = Backoff{Type: typ, Delay: t.duration("delay", time.Second, false)}
		for _, k := range []string{"initial_delay", "max_delay", "multiplier"} {
			if t.has(k) {
				t.errorf(k, "belongs to exponential backoff: set type = \"exponential\", or use delay for a fixed one")
			}
		}
	case "exponential":
		b = Backoff{
			Type:         typ,
			InitialDelay: t.duration("initial_delay", time.Second, false),
			MaxDelay:     t.duration("max_delay", 30*time.Second, false),
			Multiplier:   t.float("multiplier", 2),
		}
		if t.has("delay") {
			t.errorf("delay", "belongs to fixed backoff: exponential backoff uses initial_delay, max_delay and multiplier")
		}
		// Written this way round to reject NaN too.
		if !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 1) {
			t.errorf("multiplier", "must be a finite number of at least 1, got %v", b.Multiplier)
		}
		if b.MaxDelay < b.InitialDelay {
			t.errorf("max_delay", "%s is shorter than initial_delay %s; raise max_delay or lower initial_delay", b.MaxDelay, b.InitialDelay)
		}
	default:
		t.errorf("type", "unknown backoff type %q (use fixed or exponential)", typ)
		for _, k := range []string{"delay", "initial_delay", "max_delay", "multiplier"} {
			t.has(k) // known keys; which ones fit depends on the type
		}
		return fixed
	}
	return b
}

func (p *parser) crashLoop(t *table) CrashLoop {
	c := CrashLoop{MaxRestarts: 5, Window: time.Minute, Backoff: time.Minute}
	if t == nil {
		return c
	}
	c.MaxRestarts = t.integer("max_restarts", c.MaxRestarts, 1)
	c.Window = t.duration("window", c.Window, true)
	c.Backoff = t.duration("backoff", c.Backoff, false)
	t.done()
	return c
}

func validServiceName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// badHostname checks a hostname against RFC 1123 and the kernel's 64-byte
// limit, and says what is wrong with it.
func badHostname(h string) string {
	if h == "" {
		return ""
	}
	if len(h) > 64 {
		return fmt.Sprintf("is %d bytes long; Linux allows at most 64", len(h))
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Sprintf("%q is not a valid hostname: use dot-separated labels of 1-63 letters, digits and '-', not starting or ending with '-'", h)
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Sprintf("%q is not a valid hostname: use only letters, digits, '-' and '.'", h)
			}
		}
	}
	return ""
}
