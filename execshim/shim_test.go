package execshim

import (
	"reflect"
	"syscall"
	"testing"
)

func TestEncodeDecode(t *testing.T) {
	n, m, o := 5, 0o27, -500
	tests := []Settings{
		{},
		{Umask: &m},
		{Nice: &n, OOMScoreAdj: &o},
		{Rlimits: []Rlimit{{"nofile", 7, 65536}, {"core", 4, ^uint64(0)}}},
		{Cred: &syscall.Credential{Uid: 1000, Gid: 100}},
		{Cred: &syscall.Credential{Uid: 1, Gid: 2, Groups: []uint32{3, 4}}, Nice: &n},
	}
	for _, s := range tests {
		got, err := decode(s.encode())
		if err != nil {
			t.Errorf("%q: %v", s.encode(), err)
			continue
		}
		if !reflect.DeepEqual(got, s) {
			t.Errorf("%q decoded to %+v, want %+v", s.encode(), got, s)
		}
	}
}

func TestDecodeBad(t *testing.T) {
	for _, arg := range []string{"x", "r=1:2", "n=five", "u=9", "c=1:2", "z=1", "c=a:b:"} {
		if _, err := decode(arg); err == nil {
			t.Errorf("decode(%q) took it", arg)
		}
	}
}

func TestArgvKeepsTheProgramsArgs(t *testing.T) {
	argv := Argv("/bin/sleep", []string{"sleep", "1"}, Settings{})
	if !IsShim(argv) || argv[3] != "/bin/sleep" || !reflect.DeepEqual(argv[4:], []string{"sleep", "1"}) {
		t.Errorf("Argv = %q", argv)
	}
}
