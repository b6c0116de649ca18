package tree

import (
	"os"
	"strconv"
	"strings"
)

// Process is what /proc/PID/stat says of a process: the fields tend reads.
type Process struct {
	Pid, PPid, Pgrp, Session int
	State                    byte
	Start                    uint64 // clock ticks after boot: with the PID, names one process
}

// alive: not a zombie waiting to be reaped, nor dead.
func (p Process) Alive() bool { return p.State != 'Z' && p.State != 'X' && p.State != 'x' }

// ReadProcess parses /proc/PID/stat.
func ReadProcess(pid int) (Process, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Process{}, false
	}
	return parseStat(pid, string(b))
}

// parseStat reads the fields after the command name, which may itself
// hold spaces and parentheses: they are counted from the last ')'.
func parseStat(pid int, s string) (Process, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Process{}, false
	}
	f := strings.Fields(s[i+1:])
	// state(3) ppid(4) pgrp(5) session(6) ... starttime(22), numbered as proc(5).
	if len(f) < 20 || len(f[0]) != 1 {
		return Process{}, false
	}
	p := Process{Pid: pid, State: f[0][0]}
	var err error
	if p.PPid, err = strconv.Atoi(f[1]); err != nil {
		return Process{}, false
	}
	if p.Pgrp, err = strconv.Atoi(f[2]); err != nil {
		return Process{}, false
	}
	if p.Session, err = strconv.Atoi(f[3]); err != nil {
		return Process{}, false
	}
	if p.Start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return Process{}, false
	}
	return p, true
}

// snapshot is one pass over /proc, indexed for the questions a survey asks.
type snapshot struct {
	procs    map[int]Process
	children map[int][]int
	byGroup  map[int][]int
	bySess   map[int][]int
}

// takeSnapshot reads the processes a survey may need: the subtrees of the
// main processes in leaders, and of tend's children that nobody started
// (adopted orphans), where whatever outlived a service's main process
// lives. Not the subtrees of other services, checks or the main program:
// one service's exit costs what its own processes cost, not what the whole
// machine's do. Without /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN)
// it reads all of /proc.
func takeSnapshot(self int, leaders map[int]bool, owned func(pid int) bool) *snapshot {
	s := &snapshot{procs: map[int]Process{}, children: map[int][]int{}, byGroup: map[int][]int{}, bySess: map[int][]int{}}
	roots, ok := childrenOf(self)
	if !ok {
		s.readAll(self)
		return s
	}
	var queue []int
	for _, pid := range roots {
		if leaders[pid] || !owned(pid) {
			queue = append(queue, pid)
		}
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if _, seen := s.procs[pid]; seen {
			continue // a PID reused while the walk ran
		}
		p, ok := ReadProcess(pid)
		if !ok {
			continue
		}
		s.add(p)
		kids, _ := childrenOf(pid)
		queue = append(queue, kids...)
	}
	return s
}

// childrenOf lists pid's children, those of every thread of it.
func childrenOf(pid int) ([]int, bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	var kids []int
	found := false
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/" + task.Name() + "/children")
		if err != nil {
			continue
		}
		found = true
		for _, f := range strings.Fields(string(b)) {
			if kid, err := strconv.Atoi(f); err == nil {
				kids = append(kids, kid)
			}
		}
	}
	return kids, found
}

// readAll is the survey without the children files: every process.
func (s *snapshot) readAll(self int) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if p, ok := ReadProcess(pid); ok {
			s.add(p)
		}
	}
}

func (s *snapshot) add(p Process) {
	s.procs[p.Pid] = p
	s.children[p.PPid] = append(s.children[p.PPid], p.Pid)
	s.byGroup[p.Pgrp] = append(s.byGroup[p.Pgrp], p.Pid)
	s.bySess[p.Session] = append(s.bySess[p.Session], p.Pid)
}

// members are the living processes of the run whose main process is
// leader (its session and process group share that number): those in the
// session or the group, those known from an earlier look (same start
// time), and every descendant of any of them.
func (s *snapshot) members(leader int, known map[int]uint64) []Process {
	seen := map[int]bool{}
	var queue []int
	add := func(pid int) {
		if !seen[pid] {
			seen[pid] = true
			queue = append(queue, pid)
		}
	}
	for _, pid := range s.bySess[leader] {
		add(pid)
	}
	for _, pid := range s.byGroup[leader] {
		add(pid)
	}
	for pid, start := range known {
		if p, ok := s.procs[pid]; ok && p.Start == start {
			add(pid)
		}
	}
	var out []Process
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if p := s.procs[pid]; p.Alive() {
			out = append(out, p)
		}
		for _, c := range s.children[pid] {
			add(c)
		}
	}
	return out
}
