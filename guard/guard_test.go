package guard

import (
	"strings"
	"testing"
	"time"
)

func TestPanicIsReportedNotFatal(t *testing.T) {
	Go("worker", func() { panic("boom") })
	select {
	case err := <-Panics():
		if !strings.Contains(err.Error(), "panic in worker: boom") || !strings.Contains(err.Error(), "guard_test.go") {
			t.Fatalf("report %q lacks the name, value or stack", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the panic was not reported")
	}
}

func TestReportNeverBlocks(t *testing.T) {
	done := make(chan struct{})
	go func() {
		for range cap(panics) + 10 {
			Report(nil)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Report blocked on a full channel")
	}
	for len(panics) > 0 {
		<-panics
	}
}
