package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tend-init/tend/execshim"
	"github.com/tend-init/tend/signals/early"
	"github.com/tend-init/tend/spawner"
)

// The early subscription skips the spawner by its flag, which it repeats
// rather than import package spawner (and everything spawner imports).
func TestEarlyKnowsTheSpawnerFlag(t *testing.T) {
	if early.SpawnerFlag != spawner.Magic {
		t.Fatalf("early.SpawnerFlag = %q, spawner.Magic = %q", early.SpawnerFlag, spawner.Magic)
	}
}

// The same for the exec shim's flag.
func TestEarlyKnowsTheShimFlag(t *testing.T) {
	if early.ShimFlag != execshim.Flag {
		t.Fatalf("early.ShimFlag = %q, execshim.Flag = %q", early.ShimFlag, execshim.Flag)
	}
}

// Package inits run dependencies first: every import package early adds
// can only move its init, and with it tend's signal subscription, later.
// An import beyond these needs a reason (and the start-up window measured
// again, docs/reliability.md "The first milliseconds").
func TestEarlyImportsAlmostNothing(t *testing.T) {
	allowed := map[string]bool{
		"os": true, "os/signal": true, "runtime": true, "sync": true,
		"sync/atomic": true, "syscall": true, "unsafe": true,
	}
	files, err := filepath.Glob("signals/early/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no files in signals/early: %v", err)
	}
	for _, f := range files {
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !allowed[path] {
				t.Errorf("%s imports %q", f, path)
			}
		}
	}
}
