package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// How the files of an include tree make one set of services. A file's
// [services.NAME] adds a service. A service that a file read before defines
// already may be changed only with an explicit marker in its table:
//
//	override = "merge"    the keys given replace those keys; tables
//	                      (environment, backoff, crash_loop, ready, health)
//	                      merge key by key; arrays are replaced
//	override = "replace"  this definition replaces the whole service
//
// Without one it is an error that names both places, so a derived image
// cannot change a base image's service by accident. Two rules keep a merge
// from mixing alternatives: in ready and health, giving one kind (exec,
// tcp, http, file, notify) drops the kind the service had; in backoff, a
// type other than the service's replaces the whole table.

// fragment is one file's [services.NAME] table.
type fragment struct {
	name string
	src  *source
	m    map[string]any
	mode string // "", "merge" or "replace"; "invalid" is left out
}

// fragments reads the services table of a file's top-level table t.
func (t *table) fragments() []*fragment {
	st := t.sub("services")
	if st == nil {
		return nil
	}
	out := make([]*fragment, 0, len(st.m))
	for _, name := range sortedKeys(st.m) {
		s := st.sub(name)
		if s == nil {
			continue
		}
		if !validServiceName(name) {
			s.problem("service name %q may use only letters, digits, '-', '_' and '.'", name)
		}
		f := &fragment{name: name, src: t.src, m: s.m}
		if v, ok := s.m["override"]; ok {
			switch v {
			case "merge", "replace":
				f.mode = v.(string)
			default:
				s.errorf("override", "must be \"merge\" (the keys given here replace those keys; tables merge key by key) or \"replace\" (this table replaces the whole service), not %s", describe(v))
				f.mode = "invalid" // left out, rather than be a duplicate too
			}
		}
		out = append(out, f)
	}
	return out
}

// describe shows a TOML value in a message.
func describe(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return typeName(v)
}

// definition is a service as the files of a tree define it.
type definition struct {
	// frags are the fragment that defined the service (or last replaced
	// it), then those merged over it, in the order read.
	frags []*fragment
	// origins is, once the fragments are merged, the file each key below
	// the service came from ("environment.PORT"), where that is not the
	// first fragment's file.
	origins map[string]*source
	merged  map[string]any
}

// define puts the fragments of the tree together, in the order read. names
// are the services in the order first defined.
func (tr *tree) define() (defs map[string]*definition, names []string) {
	defs = make(map[string]*definition, len(tr.frags))
	names = make([]string, 0, len(tr.frags))
	for _, f := range tr.frags {
		d := defs[f.name]
		at := toml.Key{"services", f.name}
		switch {
		case f.mode == "invalid":
		case d == nil && f.mode != "":
			if tr.broken {
				continue // what it overrides may be in a file that failed
			}
			k := append(at, "override")
			tr.p.errorOn(f.src, k, k, "nothing to override: no file read before this one defines services.%s (files are read in this order: %s); remove override to define the service here",
				f.name, tr.readOrder(f.src))
			defs[f.name] = &definition{frags: []*fragment{f}}
			names = append(names, f.name)
		case d == nil:
			defs[f.name] = &definition{frags: []*fragment{f}}
			names = append(names, f.name)
		case f.mode == "":
			first := d.frags[0]
			tr.p.errs = append(tr.p.errs, problem{
				Error: Error{File: f.src.path, Key: at.String()},
				src:   f.src, at: at.String(), ref: first.src, refAt: at.String(),
				msg: func(line int) string {
					place := first.src.path
					if line > 0 {
						place = fmt.Sprintf("%s:%d", place, line)
					}
					return fmt.Sprintf("is defined already, at %s; to change it here add override = \"merge\" (the keys given replace those keys) or override = \"replace\" (this table replaces the whole service)", place)
				},
			})
		case f.mode == "replace":
			d.frags, d.origins, d.merged = []*fragment{f}, nil, nil
		default:
			d.frags = append(d.frags, f)
			d.origins, d.merged = nil, nil
		}
	}
	return defs, names
}

// readOrder lists the files read up to src, for a message: at most a few.
func (tr *tree) readOrder(src *source) string {
	var names []string
	for _, s := range tr.sources[:src.index+1] {
		names = append(names, s.path)
	}
	if len(names) > 6 {
		names = append(names[:2:2], fmt.Sprintf("... %d more ...", len(names)-4), names[len(names)-2], names[len(names)-1])
	}
	return strings.Join(names, ", ")
}

// table is the service's keys, all fragments merged.
func (d *definition) table() map[string]any {
	if len(d.frags) == 1 {
		return d.frags[0].m
	}
	if d.merged == nil {
		d.merge()
	}
	return d.merged
}

// sourceOf is the file that the key rest (below services.NAME) came from.
// The service's table itself is in the last file that changed it.
func (d *definition) sourceOf(rest toml.Key) *source {
	if len(rest) == 0 || len(d.frags) == 1 {
		return d.frags[len(d.frags)-1].src
	}
	if d.merged == nil {
		d.merge()
	}
	for n := len(rest); n > 0; n-- {
		if s, ok := d.origins[rest[:n].String()]; ok {
			return s
		}
	}
	return d.frags[0].src
}

func (d *definition) merge() {
	base := d.frags[0].m
	d.merged = make(map[string]any, len(base)+2)
	for k, v := range base {
		if k != "override" {
			d.merged[k] = v
		}
	}
	d.origins = make(map[string]*source)
	for _, f := range d.frags[1:] {
		d.mergeTable(d.merged, f.m, nil, f.src)
	}
}

// checkKinds are the keys of a ready or health table of which one is set.
var checkKinds = []string{string(CheckExec), string(CheckTCP), string(CheckHTTP), string(CheckFile), string(CheckNotify)}

// mergeTable puts the keys of over (from src) into m, a table of the merged
// service at path that the merge owns. The values themselves are shared
// with the decoded files, never changed.
func (d *definition) mergeTable(m, over map[string]any, path toml.Key, src *source) {
	for _, k := range sortedKeys(over) {
		if len(path) == 0 && k == "override" {
			continue
		}
		v := over[k]
		kp := append(path[:len(path):len(path)], k)
		name := kp.String()
		old, _ := m[k].(map[string]any)
		nt, isTable := v.(map[string]any)
		if old != nil && isTable && !replacesTable(path, k, old, nt) {
			merged := make(map[string]any, len(old)+len(nt))
			for ck, cv := range old {
				if len(path) == 0 && (k == "ready" || k == "health") && slices.Contains(checkKinds, ck) && hasAny(nt, checkKinds) {
					continue // the new kind replaces the old one
				}
				merged[ck] = cv
				// Keys of the old table keep the file they came from.
				ckp := append(kp[:len(kp):len(kp)], ck)
				if _, ok := d.origins[ckp.String()]; !ok {
					d.origins[ckp.String()] = d.sourceOf(ckp)
				}
			}
			d.origins[name] = src
			d.mergeTable(merged, nt, kp, src)
			m[k] = merged
			continue
		}
		m[k] = v
		for key := range d.origins {
			if strings.HasPrefix(key, name+".") {
				delete(d.origins, key) // what was under k is gone
			}
		}
		d.origins[name] = src
	}
}

// replacesTable: a merge of table k (at path) is a replacement. A backoff
// of another type has none of the old one's keys.
func replacesTable(path toml.Key, k string, old, over map[string]any) bool {
	if len(path) != 0 || k != "backoff" {
		return false
	}
	t, ok := over["type"]
	if !ok {
		return false
	}
	was, ok := old["type"]
	if !ok {
		was = "fixed"
	}
	return t != was
}

func hasAny(m map[string]any, keys []string) bool {
	for _, k := range keys {
		if _, ok := m[k]; ok {
			return true
		}
	}
	return false
}
