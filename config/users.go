package config

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Credential is what a service runs as.
type Credential struct {
	Uid    uint32   // from user; tend's own uid when only group is set
	Gid    uint32   // group if set, else the user's primary group from /etc/passwd, else tend's own gid
	Groups []uint32 // supplementary groups, as initgroups(3) would set them
}

// credential resolves user and group by reading the passwd and group files
// directly: tend is static, so there is no NSS, and os/user's fallback parser
// cannot be pointed at test files. Numeric ids are taken as they are.
func (p *parser) credential(t *table, user, group string) *Credential {
	if user == "" && group == "" {
		return nil
	}
	c := &Credential{Uid: p.opts.uid, Gid: p.opts.gid}
	name := "" // the user's name, for supplementary groups
	if user != "" {
		if id, ok := parseID(user); ok {
			c.Uid = id
			// A uid without a passwd entry is fine; it just has no name.
			if u, ok, _ := lookupUser(p.opts.passwdFile, func(u passwdEntry) bool { return u.uid == id }); ok {
				name, c.Gid = u.name, u.gid
			}
		} else {
			u, found, err := lookupUser(p.opts.passwdFile, func(u passwdEntry) bool { return u.name == user })
			switch {
			case err != nil:
				t.errorf("user", "cannot look up user %q: %v (use a numeric uid)", user, err)
				return nil
			case !found:
				t.errorf("user", "unknown user %q: it is not in %s (add it there, or use a numeric uid)", user, p.opts.passwdFile)
				return nil
			}
			name, c.Uid, c.Gid = u.name, u.uid, u.gid
		}
	}
	groups, gerr := readGroups(p.opts.groupFile)
	if group != "" {
		if id, ok := parseID(group); ok {
			c.Gid = id
		} else {
			i := slices.IndexFunc(groups, func(g groupEntry) bool { return g.name == group })
			switch {
			case gerr != nil:
				t.errorf("group", "cannot look up group %q: %v (use a numeric gid)", group, gerr)
				return nil
			case i < 0:
				t.errorf("group", "unknown group %q: it is not in %s (add it there, or use a numeric gid)", group, p.opts.groupFile)
				return nil
			}
			c.Gid = groups[i].gid
		}
	}
	c.Groups = []uint32{c.Gid}
	if name == "" {
		return c
	}
	for _, g := range groups {
		if slices.Contains(g.members, name) && !slices.Contains(c.Groups, g.gid) {
			c.Groups = append(c.Groups, g.gid)
		}
	}
	return c
}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

type passwdEntry struct {
	name     string
	uid, gid uint32
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// lookupUser returns the first entry of the passwd file that matches.
func lookupUser(path string, match func(passwdEntry) bool) (passwdEntry, bool, error) {
	var found passwdEntry
	ok := false
	err := readColonFile(path, 7, func(f []string) bool {
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if e := (passwdEntry{f[0], uid, gid}); ok1 && ok2 && match(e) {
			found, ok = e, true
			return false
		}
		return true
	})
	return found, ok, err
}

// readGroups reads the group file; a missing file has no groups, as in many
// minimal images.
func readGroups(path string) ([]groupEntry, error) {
	var groups []groupEntry
	err := readColonFile(path, 4, func(f []string) bool {
		if gid, ok := parseID(f[2]); ok {
			var members []string
			if f[3] != "" {
				members = strings.Split(f[3], ",")
			}
			groups = append(groups, groupEntry{f[0], gid, members})
		}
		return true
	})
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return groups, err
}

// readColonFile calls fn with the fields of each entry of an /etc/passwd-style
// file until fn returns false. Comments, blank lines, NIS "+"/"-" entries and
// lines with the wrong number of fields are skipped, as glibc does.
func readColonFile(path string, nfields int, fn func([]string) bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.ContainsAny(line[:1], "#+-") {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) != nfields || fields[0] == "" {
			continue
		}
		if !fn(fields) {
			return nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}
