package supervise

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
)

// TestPumpCutsLines feeds streams in random chunks: lines come out whole,
// in order, prefixed, and longer ones in MaxLine pieces.
func TestPumpCutsLines(t *testing.T) {
	long := strings.Repeat("x", 2*MaxLine+10)
	cases := []struct {
		in   string
		want []string
	}{
		{"a\nb\n", []string{"a", "b"}},
		{"no newline at the end", []string{"no newline at the end"}},
		{"\n\n", []string{"", ""}},
		{"", nil},
		{long + "\nafter\n", []string{long[:MaxLine], long[MaxLine : 2*MaxLine], long[2*MaxLine:], "after"}},
	}
	rng := rand.New(rand.NewSource(1))
	for _, c := range cases {
		for round := 0; round < 20; round++ {
			var out bytes.Buffer
			sink := NewSink(&out, &out, "text")
			p := pump{sink: sink, service: "svc", stream: "stdout"}
			data := []byte(c.in)
			for len(data) > 0 {
				n := 1 + rng.Intn(min(len(data), MaxLine))
				p.take(data[:n])
				data = data[n:]
			}
			p.finish()
			var want string
			for _, l := range c.want {
				want += "svc | " + l + "\n"
			}
			if out.String() != want {
				t.Fatalf("input %.40q: got %.200q, want %.200q", c.in, out.String(), want)
			}
		}
	}
}
