//go:build tendslowstart

package main

import "time"

// A test build (go build -tags tendslowstart) pauses 300 ms after its flags
// are read and before tend proper starts, standing in for everything slow
// between exec and tend's own subscription (a cold page cache, a loaded
// machine): a signal sent in that pause must not end tend.
func init() {
	beforeRun = func() { time.Sleep(300 * time.Millisecond) }
}
