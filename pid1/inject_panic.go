//go:build tendpanic

package pid1

import (
	"time"

	"github.com/tend-init/tend/guard"
)

// A test build (go build -tags tendpanic) panics in a guarded goroutine
// shortly after start, to show that a panic ends in an orderly shutdown.
func init() {
	afterStart = func() {
		guard.Go("injected fault", func() {
			time.Sleep(300 * time.Millisecond)
			panic("injected panic")
		})
	}
}
