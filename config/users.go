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
// cannot be pointed at test files. Numeric ids are taken as they are. It also
// returns the passwd entry of user (nil when user is empty, unknown or a uid
// without an entry), for the service's environment.
func (p *parser) credential(t *table, user, group string) (*Credential, *passwdEntry) {
	if user == "" && group == "" {
		return nil, nil
	}
	db := p.userDB()
	c := &Credential{Uid: p.opts.uid, Gid: p.opts.gid}
	var acct *passwdEntry
	if user != "" {
		if id, ok := parseID(user); ok {
			c.Uid = id
			// A uid without a passwd entry is fine; it just has no name.
			if i, ok := db.byUID[id]; ok {
				acct = &db.passwd[i]
				c.Gid = acct.gid
			}
		} else {
			i, found := db.byName[user]
			switch {
			case db.passwdErr != nil:
				t.errorf("user", "cannot look up user %q: %v (use a numeric uid)", user, db.passwdErr)
				return nil, nil
			case !found:
				t.errorf("user", "unknown user %q: it is not in %s (add it there, or use a numeric uid)", user, p.opts.passwdFile)
				return nil, nil
			}
			acct = &db.passwd[i]
			c.Uid, c.Gid = acct.uid, acct.gid
		}
	}
	if group != "" {
		if id, ok := parseID(group); ok {
			c.Gid = id
		} else {
			gid, found := db.groupGID[group]
			switch {
			case db.groupErr != nil:
				t.errorf("group", "cannot look up group %q: %v (use a numeric gid)", group, db.groupErr)
				return nil, nil
			case !found:
				t.errorf("group", "unknown group %q: it is not in %s (add it there, or use a numeric gid)", group, p.opts.groupFile)
				return nil, nil
			}
			c.Gid = gid
		}
	}
	c.Groups = []uint32{c.Gid}
	if acct == nil {
		return c, acct
	}
	for _, g := range db.memberOf[acct.name] {
		if !slices.Contains(c.Groups, g) {
			c.Groups = append(c.Groups, g)
		}
	}
	return c, acct
}

// accountEnv is what a service that runs as user has in place of tend's own
// HOME, USER, LOGNAME and SHELL, as login(1), systemd's User= and Docker's
// USER give them: the values of the passwd entry. A uid without an entry has
// no name or shell to give, so it gets HOME=/ (as Docker does) and none of
// the others. nil (no user) keeps tend's own.
func accountEnv(user string, acct *passwdEntry) map[string]string {
	switch {
	case user == "":
		return nil
	case acct == nil:
		return map[string]string{"HOME": "/"}
	}
	env := map[string]string{"HOME": acct.home, "USER": acct.name, "LOGNAME": acct.name, "SHELL": acct.shell}
	if env["HOME"] == "" {
		env["HOME"] = "/" // what login(1) falls back to
	}
	if env["SHELL"] == "" {
		env["SHELL"] = "/bin/sh" // an empty shell field means /bin/sh (passwd(5))
	}
	return env
}

// accountKeys are the variables accountEnv replaces.
var accountKeys = []string{"HOME", "USER", "LOGNAME", "SHELL"}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

type passwdEntry struct {
	name        string
	uid, gid    uint32
	home, shell string
}

// userDB is the passwd and group files, read once per config file and
// indexed, so that many services with a user cost one read, not one each.
type userDB struct {
	passwd    []passwdEntry
	byName    map[string]int // first entry of each name
	byUID     map[uint32]int // first entry of each uid
	passwdErr error

	groupGID map[string]uint32   // first entry of each group name
	memberOf map[string][]uint32 // user name -> gids listing it, in file order
	groupErr error
}

func (p *parser) userDB() *userDB {
	if p.users != nil {
		return p.users
	}
	db := &userDB{byName: map[string]int{}, byUID: map[uint32]int{}, groupGID: map[string]uint32{}, memberOf: map[string][]uint32{}}
	db.passwdErr = readColonFile(p.opts.passwdFile, 7, func(f []string) bool {
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if !ok1 || !ok2 {
			return true
		}
		i := len(db.passwd)
		db.passwd = append(db.passwd, passwdEntry{f[0], uid, gid, f[5], f[6]})
		if _, dup := db.byName[f[0]]; !dup {
			db.byName[f[0]] = i
		}
		if _, dup := db.byUID[uid]; !dup {
			db.byUID[uid] = i
		}
		return true
	})
	// A missing group file has no groups, as in many minimal images.
	db.groupErr = readColonFile(p.opts.groupFile, 4, func(f []string) bool {
		gid, ok := parseID(f[2])
		if !ok {
			return true
		}
		if _, dup := db.groupGID[f[0]]; !dup {
			db.groupGID[f[0]] = gid
		}
		if f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				db.memberOf[m] = append(db.memberOf[m], gid)
			}
		}
		return true
	})
	if errors.Is(db.groupErr, fs.ErrNotExist) {
		db.groupErr = nil
	}
	p.users = db
	return db
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
