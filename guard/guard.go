// Package guard keeps a panic in any goroutine from crashing PID 1: the
// panic is recovered, its stack kept, and it is handed to whoever runs the
// shutdown.
package guard

import (
	"fmt"
	"runtime/debug"
)

// panics holds recovered panics until the owner of the shutdown reads them.
// Its buffer only has to hold the first few: one is enough to shut down.
var panics = make(chan error, 8)

// Go runs fn in a new goroutine whose panic becomes an error on Panics.
func Go(name string, fn func()) {
	go func() {
		defer Recover(name)
		fn()
	}()
}

// Recover must be deferred directly; it turns a panic into an error on Panics.
func Recover(name string) {
	if v := recover(); v != nil {
		Report(fmt.Errorf("panic in %s: %v\n%s", name, v, debug.Stack()))
	}
}

// Report hands a recovered panic to the shutdown without ever blocking.
func Report(err error) {
	select {
	case panics <- err:
	default:
	}
}

// Panics delivers recovered panics.
func Panics() <-chan error { return panics }
