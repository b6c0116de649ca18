package config

import (
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
)

// Loader loads the config file at one path, again and again, as tend's
// reloads do. It keeps what its last successful load read: the content sum,
// bytes and decoded tables of every file of the include tree, and each
// service as parsed. The next load reads every file again (to see what
// changed) but decodes only the files whose content differs, and parses only
// the services that a changed file defines or overrides; every other service
// is the very *Service of the last load, which a reload's comparison sees as
// unchanged at once. A failed load keeps nothing. It is safe for concurrent
// use; loads run one at a time.
//
// What a service's parse depends on besides its files is checked too:
// tend's environment (the base of every service's, and what ${VAR} reads;
// env must answer the same for the Loader's life) and, for services with a
// user or group, the passwd and group files.
type Loader struct {
	path string
	env  func(string) (string, bool)
	opts []Option
	seed [2]maphash.Seed

	mu   sync.Mutex
	last memo

	// For tests: included files read, files decoded and services parsed,
	// over all loads; and the clock (nil: time.Now).
	reads, decodes, parses int
	now                    func() time.Time
}

// memo is what a successful load leaves for the next one.
type memo struct {
	files    map[string]*fileMemo    // by path, as the tree names it
	services map[string]*serviceMemo // by name
	envSum   contentSum              // of the base environment
	env0     *envBase
	usersSum contentSum // of the passwd and group files
	order    []string   // Config.Order
}

type fileMemo struct {
	sum     contentSum
	data    []byte
	root    map[string]any // never changed: services share its values
	stat    fileStat
	trusted bool // an unchanged stat means an unchanged file
	// What an included file makes of its content (the main file is read
	// again each time: its settings are not kept).
	included bool
	entries  []includeEntry
	frags    []fragment
}

type serviceMemo struct {
	from []fragKey // the fragments it was parsed from
	svc  *Service
}

// madeOf reports whether the service was parsed from d's fragments, as
// they are now.
func (m *serviceMemo) madeOf(d *definition) bool {
	if len(m.from) != len(d.frags) {
		return false
	}
	for i, f := range d.frags {
		if m.from[i] != (fragKey{f.src.path, f.src.sum, f.mode}) {
			return false
		}
	}
	return true
}

// fragKey names one fragment of a service: its file and content, and how
// it was put over the ones before.
type fragKey struct {
	path string
	sum  contentSum
	mode string
}

// contentSum is what tells one content from another: 128 bits of maphash
// (two seeds, random per Loader) and the length. It is not cryptographic,
// nor needs to be: whoever can write tend's config files decides what tend
// runs anyway, and two different files of the same sum by accident are a
// chance of 2^-128.
type contentSum struct {
	a, b uint64
	n    int
}

func (l *Loader) sum(data []byte) contentSum {
	return contentSum{maphash.Bytes(l.seed[0], data), maphash.Bytes(l.seed[1], data), len(data)}
}

// NewLoader returns a Loader of the config file at path. env looks up the
// variables used by ${VAR}; nil means os.LookupEnv.
func NewLoader(path string, env func(string) (string, bool), opts ...Option) *Loader {
	if env == nil {
		env = os.LookupEnv
	}
	return &Loader{path: path, env: env, opts: opts, seed: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

// Load reads and validates the config file and its include tree (Load, the
// function, says how), reusing what did not change since the last
// successful load.
func (l *Loader) Load() (*Config, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	data, id, err := readMain(l.path)
	if err != nil {
		return nil, err
	}
	return l.load(data, id, true)
}

// readMain reads the main config file: any kind of file (a pipe from
// `tend check <(...)` too), of at most MaxSize bytes, without reading more
// than MaxSize+1 of it.
func readMain(path string) ([]byte, fileID, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileID{}, err
	}
	defer f.Close()
	var id fileID
	fi, statErr := f.Stat()
	if statErr == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			id = fileID{uint64(st.Dev), st.Ino}
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, id, err
	}
	if len(data) > MaxSize {
		size := "more than " + strconv.Itoa(MaxSize) + " bytes"
		if statErr == nil && fi.Mode().IsRegular() {
			size = strconv.FormatInt(fi.Size(), 10) + " bytes"
		}
		return nil, id, tooBig(path, size)
	}
	return data, id, nil
}

// load builds a config from the main file's data. limits false skips the
// size and nesting checks of the main file (for the fuzzer).
func (l *Loader) load(data []byte, id fileID, limits bool) (*Config, error) {
	p := newParser(l.env, l.opts)
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	tr := &tree{p: p, l: l, start: now(), byID: make(map[fileID]*source, len(l.last.files))}
	if !limits {
		tr.noLimits = true
	}
	main := tr.add(l.path, data, fileStat{dev: id.dev, ino: id.ino}, nil)
	tr.noLimits = false
	p.main = main
	if main.root == nil {
		return nil, p.result() // the main file's own problems: nothing else can be read
	}
	cfg := &Config{Path: l.path}
	tr.visit(main, cfg)
	var names []string // in the order first defined
	p.defs, names = tr.define()

	// What parsing a service depends on besides its files.
	// The top-level env_file is part of every service's definition.
	envKey := strings.Join(p.opts.baseEnv, "\x00")
	for _, f := range p.globalEnvFiles {
		envKey += fmt.Sprintf("\x01%v %s", f.Optional, f.Path)
	}
	envSum := l.sum([]byte(envKey))
	sameEnv := l.last.env0 != nil && envSum == l.last.envSum
	if sameEnv {
		p.env0 = l.last.env0
	}
	usersSum := l.usersSum(p.opts)
	sameUsers := usersSum == l.last.usersSum

	next := memo{services: make(map[string]*serviceMemo, len(p.defs)), envSum: envSum, usersSum: usersSum}
	cfg.Services = make(map[string]*Service, len(p.defs))
	for _, name := range names {
		d := p.defs[name]
		if tr.broken && d.frags[0].mode != "" {
			continue // an override whose service may be in a file that failed
		}
		if m := l.last.services[name]; m != nil && sameEnv && (sameUsers || m.svc.User == "" && m.svc.Group == "") && m.madeOf(d) {
			cfg.Services[name] = m.svc
			next.services[name] = m
			continue
		}
		from := make([]fragKey, len(d.frags))
		for i, f := range d.frags {
			from[i] = fragKey{f.src.path, f.src.sum, f.mode}
		}
		svc := p.service(name, &table{p: p, key: toml.Key{"services", name}, m: d.table()})
		l.parses++
		cfg.Services[name] = svc
		next.services[name] = &serviceMemo{from: from, svc: svc}
	}
	p.sharedOutputs(cfg.Services)
	// The dependencies cannot be judged with files missing.
	switch {
	case tr.broken:
	case l.sameDependencies(cfg.Services):
		cfg.Order = l.last.order // and valid: no cycles, no unknown names
	default:
		cfg.Order = p.order(cfg.Services)
	}
	cfg.Files = make([]string, len(tr.sources))
	for i, s := range tr.sources {
		cfg.Files[i] = s.path
	}
	if err := p.result(); err != nil {
		return nil, err
	}
	next.files = make(map[string]*fileMemo, len(tr.sources))
	for _, s := range tr.sources {
		inc := s.depth > 0
		m := &fileMemo{sum: s.sum, data: s.data, root: s.root, stat: s.stat, trusted: inc && s.trusted,
			included: inc, entries: s.entries, frags: s.frags}
		if old := s.memo; old != nil && inc && old.included && old.sum == m.sum && old.stat == m.stat && old.trusted == m.trusted {
			m = old // as it was (visit took its entries and frags): no new one for each unchanged file
		}
		next.files[s.path] = m
	}
	next.env0, next.order = p.env0, cfg.Order
	l.last = next
	// Warnings go through the same line lookup as errors.
	if p.warnings(cfg); len(p.errs) > 0 {
		if w, ok := p.result().(*Errors); ok {
			cfg.Warnings = w.List
		}
		p.errs = nil
	}
	return cfg, nil
}

// sameDependencies reports whether services are the last load's names,
// each with the same depends_on: then the order is the same too.
func (l *Loader) sameDependencies(services map[string]*Service) bool {
	if l.last.order == nil || len(services) != len(l.last.services) {
		return false
	}
	for name, svc := range services {
		m := l.last.services[name]
		if m == nil || m.svc != svc && !slices.Equal(m.svc.DependsOn, svc.DependsOn) {
			return false
		}
	}
	return true
}

// usersSum is the content of the passwd and group files, as a sum: when it
// changes, services with a user or group are parsed again.
func (l *Loader) usersSum(o options) contentSum {
	passwd, err1 := os.ReadFile(o.passwdFile)
	group, err2 := os.ReadFile(o.groupFile)
	var b []byte
	b = append(b, passwd...)
	b = append(b, 0)
	b = append(b, group...)
	if err1 != nil {
		b = append(b, "\x00passwd: "+err1.Error()...)
	}
	if err2 != nil {
		b = append(b, "\x00group: "+err2.Error()...)
	}
	return l.sum(b)
}

// newParser is a parser with the options applied over the defaults.
func newParser(env func(string) (string, bool), opts []Option) *parser {
	if env == nil {
		env = os.LookupEnv
	}
	p := &parser{env: env, opts: options{
		baseEnv:    os.Environ(),
		passwdFile: "/etc/passwd",
		groupFile:  "/etc/group",
		uid:        uint32(os.Getuid()),
		gid:        uint32(os.Getgid()),
	}}
	for _, o := range opts {
		o(&p.opts)
	}
	return p
}
