package pid1

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/tend-init/tend/config"
)

func TestTCPListeners(t *testing.T) {
	cases := []struct {
		name            string
		health, metrics string
		want            []string // key addr health metrics slots
	}{
		{"none", "", "", nil},
		{"health only", "0.0.0.0:8080", "", []string{"health_listen 0.0.0.0:8080 true false 8"}},
		{"metrics only", "", "127.0.0.1:9100", []string{"metrics_listen 127.0.0.1:9100 false true 4"}},
		{"both apart", "0.0.0.0:8080", "127.0.0.1:9100", []string{"health_listen 0.0.0.0:8080 true false 8", "metrics_listen 127.0.0.1:9100 false true 4"}},
		{"one address", "0.0.0.0:8080", "0.0.0.0:8080", []string{"health_listen and metrics_listen 0.0.0.0:8080 true true 8"}},
	}
	for _, tc := range cases {
		var got []string
		for _, l := range tcpListeners(&config.Config{HealthListen: tc.health, MetricsListen: tc.metrics}) {
			got = append(got, fmt.Sprint(l.key, " ", l.addr, " ", l.health, " ", l.metrics, " ", l.slots))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A listener tend cannot have is a warning that names the key, says what
// is lost and what to change.
func TestTCPListenerRefusedSaysWhatToChange(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, inUse := net.Listen("tcp", busy.Addr().String())
	cases := []struct {
		name string
		l    tcpListener
		err  error
		want []string
	}{
		{"health, in use", tcpListener{key: "health_listen", addr: busy.Addr().String(), health: true}, inUse,
			[]string{"health_listen " + busy.Addr().String() + ": listen tcp", "address already in use", "/livez and /readyz are not served", "httpGet", "set health_listen to another port"}},
		{"both, in use", tcpListener{key: "health_listen and metrics_listen", addr: ":8080", health: true, metrics: true}, inUse,
			[]string{"/livez and /readyz are not served", "and the metrics are on the control socket only", "set health_listen and metrics_listen to another port"}},
		{"metrics, low port", tcpListener{key: "metrics_listen", addr: ":80", metrics: true}, &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)},
			[]string{"metrics_listen :80", "the metrics are on the control socket only", "CAP_NET_BIND_SERVICE", "set metrics_listen to a port of 1024 or more"}},
	}
	if inUse == nil {
		t.Fatal("a second listener on a port in use was had")
	}
	for _, tc := range cases {
		got := tc.l.refused(tc.err)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", tc.name, got, w)
			}
		}
	}
}

func TestSocketRefusedSaysWhatToSet(t *testing.T) {
	denied := &fs.PathError{Op: "mkdir", Path: "/srv/tend", Err: fs.ErrPermission}
	tmp := &config.SocketPlace{Path: "/tmp/tend-1000/tend.sock", Dir: "/tmp/tend-1000", UID: 1000,
		Tried: []string{"/run/tend.sock (root's)", "$XDG_RUNTIME_DIR (it is not set)"}}
	planted := config.PrivateDir("/tmp", 1000, false) // /tmp is root's, and others may write it
	cases := []struct {
		name  string
		path  string
		place *config.SocketPlace
		err   error
		uid   int
		want  []string
		not   []string
	}{
		{"non-root, set, permission", "/srv/tend/tend.sock", nil, denied, 1000,
			[]string{"the control API is off", "tend ctl health", "uid 1000", "set control_socket", "or leave it out", "/tmp/tend-1000/tend.sock", "--socket or TEND_CONFIG"}, nil},
		{"non-root, the default, planted", tmp.Path, tmp, planted, 1000,
			[]string{"control socket /tmp/tend-1000/tend.sock: /tmp is owned by uid 0, not by uid 1000", "the control API is off",
				"the path is the default for uid 1000: not /run/tend.sock (root's), not $XDG_RUNTIME_DIR (it is not set), so /tmp/tend-1000/tend.sock",
				"set control_socket to a path uid 1000 can write", "read-only", "--socket or TEND_CONFIG"}, nil},
		{"non-root, the default, read-only", tmp.Path, tmp, &fs.PathError{Op: "mkdir", Path: "/tmp/tend-1000", Err: syscall.EROFS}, 1000,
			[]string{"read-only file system", "so /tmp/tend-1000/tend.sock", "on a writable volume"}, nil},
		{"root, other error", "/run/tend.sock", &config.SocketPlace{Path: "/run/tend.sock"}, errors.New("address already in use"), 0,
			[]string{"address already in use", "the control API is off", "the path is the default for uid 0: /run/tend.sock"}, []string{"set control_socket"}},
		{"root, set, other error", "/run/tend.sock", nil, errors.New("x"), 0, []string{"the control API is off"}, []string{"set control_socket", "default"}},
	}
	if planted == nil {
		t.Fatal("/tmp passed as a private directory")
	}
	for _, c := range cases {
		got := socketRefused(c.path, c.place, c.err, c.uid)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", c.name, got, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(got, w) {
				t.Errorf("%s: %q has %q", c.name, got, w)
			}
		}
	}
}
