package spawner

import (
	"encoding/binary"
	"errors"
	"syscall"
)

// The wire format of one request, one SOCK_SEQPACKET message, with the
// child's descriptors (and the cgroup's, last) attached as SCM_RIGHTS:
//
//	u32 flags, u32 pgid, u32 uid, u32 gid, u32 cgroup index (or none),
//	u32 number of descriptor slots, then per slot u32 index into the
//	rights (or none: the slot is closed in the child),
//	u32 number of groups, u32 each,
//	string path, string dir, list argv, list env
//
// where a string is u32 length and bytes, a list u32 count and strings.
//
// The reply is 12 bytes: u32 status, u32 pid, u32 errno.

const (
	flagSetsid = 1 << iota
	flagSetpgid
	flagCredential
	flagNoSetGroups
	flagCgroup
)

const none = ^uint32(0)

// Reply status.
const (
	replyStarted  = 0 // pid is the child's
	replyFailed   = 1 // the child was not started: errno; a child that failed its exec may be left as a zombie (exit 253)
	replyDeclined = 2 // the spawner could not read the request: tend starts it itself
)

// maxRequest is the largest request the spawner reads; a larger one is
// started in-process.
const maxRequest = 1 << 20

// maxRights is the kernel's SCM_MAX_FD.
const maxRights = 253

type request struct {
	path, dir string
	argv, env []string
	setsid    bool
	setpgid   bool
	pgid      int
	cred      *syscall.Credential
	slots     []uint32 // per child descriptor: index into the rights, or none
	cgroup    uint32   // index into the rights, or none
}

func appendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

func appendString(b []byte, s string) []byte {
	b = appendU32(b, uint32(len(s)))
	return append(b, s...)
}

func appendList(b []byte, l []string) []byte {
	b = appendU32(b, uint32(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

func (q *request) encode() []byte {
	var flags uint32
	var uid, gid uint32
	var groups []uint32
	if q.setsid {
		flags |= flagSetsid
	}
	if q.setpgid {
		flags |= flagSetpgid
	}
	if q.cred != nil {
		flags |= flagCredential
		if q.cred.NoSetGroups {
			flags |= flagNoSetGroups
		}
		uid, gid, groups = q.cred.Uid, q.cred.Gid, q.cred.Groups
	}
	if q.cgroup != none {
		flags |= flagCgroup
	}
	n := 64 + 4*len(q.slots) + 4*len(groups) + len(q.path) + len(q.dir)
	for _, s := range q.argv {
		n += 4 + len(s)
	}
	for _, s := range q.env {
		n += 4 + len(s)
	}
	b := make([]byte, 0, n)
	b = appendU32(b, flags)
	b = appendU32(b, uint32(q.pgid))
	b = appendU32(b, uid)
	b = appendU32(b, gid)
	b = appendU32(b, q.cgroup)
	b = appendU32(b, uint32(len(q.slots)))
	for _, s := range q.slots {
		b = appendU32(b, s)
	}
	b = appendU32(b, uint32(len(groups)))
	for _, g := range groups {
		b = appendU32(b, g)
	}
	b = appendString(b, q.path)
	b = appendString(b, q.dir)
	b = appendList(b, q.argv)
	b = appendList(b, q.env)
	return b
}

var errShort = errors.New("spawner: short request")

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.err = errShort
		d.b = nil
		return 0
	}
	v := binary.LittleEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) str() string {
	n := d.u32()
	if uint64(n) > uint64(len(d.b)) {
		d.err = errShort
		d.b = nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) list() []string {
	n := d.u32()
	if uint64(n)*4 > uint64(len(d.b)) {
		d.err = errShort
		d.b = nil
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func decode(b []byte) (*request, error) {
	d := &decoder{b: b}
	q := &request{}
	flags := d.u32()
	q.pgid = int(int32(d.u32()))
	uid, gid := d.u32(), d.u32()
	q.cgroup = d.u32()
	if flags&flagCgroup == 0 {
		q.cgroup = none
	}
	ns := d.u32()
	if uint64(ns)*4 > uint64(len(d.b)) {
		return nil, errShort
	}
	q.slots = make([]uint32, ns)
	for i := range q.slots {
		q.slots[i] = d.u32()
	}
	ng := d.u32()
	if uint64(ng)*4 > uint64(len(d.b)) {
		return nil, errShort
	}
	groups := make([]uint32, ng)
	for i := range groups {
		groups[i] = d.u32()
	}
	q.path = d.str()
	q.dir = d.str()
	q.argv = d.list()
	q.env = d.list()
	if d.err != nil {
		return nil, d.err
	}
	q.setsid = flags&flagSetsid != 0
	q.setpgid = flags&flagSetpgid != 0
	if flags&flagCredential != 0 {
		q.cred = &syscall.Credential{Uid: uid, Gid: gid, Groups: groups, NoSetGroups: flags&flagNoSetGroups != 0}
	}
	return q, nil
}

func encodeReply(status, pid uint32, errno syscall.Errno) []byte {
	b := make([]byte, 0, 12)
	b = appendU32(b, status)
	b = appendU32(b, pid)
	return appendU32(b, uint32(errno))
}

func decodeReply(b []byte) (status uint32, pid int, errno syscall.Errno, err error) {
	if len(b) != 12 {
		return 0, 0, 0, errShort
	}
	d := &decoder{b: b}
	status, pid, errno = d.u32(), int(d.u32()), syscall.Errno(d.u32())
	return status, pid, errno, nil
}
