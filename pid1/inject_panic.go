//go:build tendpanic

package pid1

import (
	"os"
	"time"

	"github.com/tend-init/tend/guard"
)

// A test build (go build -tags tendpanic) panics in a guarded goroutine
// shortly after start, to show that a panic ends in an orderly shutdown:
// 300 ms after, or TEND_PANIC_AFTER (a slow VM's services need longer to
// show they run).
func init() {
	afterStart = func() {
		after := 300 * time.Millisecond
		if d, err := time.ParseDuration(os.Getenv("TEND_PANIC_AFTER")); err == nil {
			after = d
		}
		guard.Go("injected fault", func() {
			time.Sleep(after)
			panic("injected panic")
		})
	}
}
