package pid1

import (
	"fmt"
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
