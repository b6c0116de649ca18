package supervise

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestHTTPCheckReadsTheStatusStrictly answers a health check's GET with
// status lines, good and bad: only a well-formed 2xx passes.
func TestHTTPCheckReadsTheStatusStrictly(t *testing.T) {
	cases := []struct {
		status string
		pass   bool
	}{
		{"HTTP/1.1 200 OK\r\n", true},
		{"HTTP/1.0 204 No Content\r\n", true},
		{"HTTP/1.1 299 Odd\n", true},
		{"HTTP/1.1 2ab OK\r\n", false},
		{"HTTP/1.1 503 Service Unavailable\r\n", false},
		{"HTTP/1.1 301 Moved\r\n", false},
		{"HTTP/2 200\r\n", false},
		{"SSH-2.0-OpenSSH\r\n", false},
		{"", false},
	}
	for _, c := range cases {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			_, _ = conn.Read(buf)
			_, _ = conn.Write([]byte(c.status))
			conn.Close()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = httpGet(ctx, "http://"+l.Addr().String()+"/healthz")
		cancel()
		l.Close()
		if (err == nil) != c.pass {
			t.Errorf("status %q: error %v, want pass=%v", c.status, err, c.pass)
		}
	}
}
