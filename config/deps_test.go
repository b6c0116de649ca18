package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestOrderLarge(t *testing.T) {
	// s0000 depends on s0001, which depends on s0002...: the reverse of name
	// order; every tenth also depends on one far ahead.
	const n = 2000
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[services.s%04d]\ncommand = \"x\"\n", i)
		var deps []string
		if i+1 < n {
			deps = append(deps, fmt.Sprintf("%q", fmt.Sprintf("s%04d", i+1)))
		}
		if i%10 == 0 && i+500 < n {
			deps = append(deps, fmt.Sprintf("%q", fmt.Sprintf("s%04d", i+500)))
		}
		fmt.Fprintf(&b, "depends_on = [%s]\n", strings.Join(deps, ", "))
	}
	cfg := mustParse(t, b.String(), nil)
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("s%04d", n-1-i)
	}
	if !slices.Equal(cfg.Order, want) {
		t.Errorf("order starts %v, want %v", cfg.Order[:5], want[:5])
	}
}

func TestUnknownServiceMessage(t *testing.T) {
	var b strings.Builder
	for i := range 12 {
		fmt.Fprintf(&b, "[services.s%02d]\ncommand = \"x\"\n", i)
	}
	b.WriteString("depends_on = [\"nope\"]\n")
	_, err := parse(t, b.String(), nil)
	checkErrors(t, err, []want{{25, "services.s11.depends_on", `unknown service "nope" (depend only on services defined in the config; it has 12)`}})
}

func TestCycleWalks(t *testing.T) {
	// a waits on a cycle it is not part of; c -> d -> c; e -> f -> g -> e;
	// h waits on both cycles.
	src := `[services.a]
command = "x"
depends_on = ["b"]
[services.b]
command = "x"
depends_on = ["c"]
[services.c]
command = "x"
depends_on = ["d"]
[services.d]
command = "x"
depends_on = ["c"]
[services.e]
command = "x"
depends_on = ["g"]
[services.f]
command = "x"
depends_on = ["e"]
[services.g]
command = "x"
depends_on = ["f"]
[services.h]
command = "x"
depends_on = ["a", "e"]
[services.i]
command = "x"
`
	_, err := parse(t, src, nil)
	checkErrors(t, err, []want{
		{9, "services.c.depends_on", "dependency cycle: c -> d -> c"},
		{15, "services.e.depends_on", "dependency cycle: e -> g -> f -> e"},
	})
}
