package main

import (
	"runtime/debug"
	"testing"
)

func TestVersionLine(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i+1 < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	info := func(v string, settings []debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/tend-init/tend", Version: v}, Settings: settings}
	}
	const rev = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"
	cases := []struct {
		name   string
		bi     *debug.BuildInfo
		linked string
		want   string
	}{
		{"work tree with changes",
			info("v0.0.0-20261129175541-1a2b3c4d5e6f+dirty", vcs("vcs", "git", "vcs.revision", rev, "vcs.time", "2026-11-29T17:55:41Z", "vcs.modified", "true")), "",
			"tend v0.0.0-20261129175541-1a2b3c4d5e6f+dirty (rev 1a2b3c4d5e6f, 2026-11-29T17:55:41Z, modified) go1.26.8"},
		{"clean tagged checkout",
			info("v1.2.3", vcs("vcs.revision", rev, "vcs.time", "2026-11-29T17:55:41Z", "vcs.modified", "false")), "",
			"tend v1.2.3 (rev 1a2b3c4d5e6f, 2026-11-29T17:55:41Z) go1.26.8"},
		{"go install module@version: no VCS settings",
			info("v1.2.3", nil), "",
			"tend v1.2.3 go1.26.8"},
		{"-buildvcs=false",
			info("(devel)", vcs("-buildmode", "exe", "CGO_ENABLED", "0")), "",
			"tend devel (no VCS information: built with -buildvcs=false or outside a git work tree) go1.26.8"},
		{"tarball build named at link time",
			info("(devel)", nil), "1.2.3",
			"tend 1.2.3 go1.26.8"},
		{"a real module version wins over the linked one",
			info("v1.2.3", nil), "9.9.9",
			"tend v1.2.3 go1.26.8"},
		{"VCS revision without a module version",
			info("", vcs("vcs.revision", "abc123", "vcs.modified", "false")), "",
			"tend devel (rev abc123) go1.26.8"},
		{"no build information",
			nil, "",
			"tend devel (no build information)"},
		{"no build information, linked version",
			nil, "1.2.3",
			"tend 1.2.3 (no build information)"},
	}
	for _, c := range cases {
		if got := versionLine(c.bi, c.linked); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}
