package apitest

import (
	"strings"
	"testing"
	"time"
)

func TestLeakCheckSeesALeak(t *testing.T) {
	base := goroutines()
	stop := make(chan struct{})
	go func() { <-stop }()
	err := settle(base, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "TestLeakCheckSeesALeak") {
		t.Fatalf("a parked goroutine went unnoticed: %v", err)
	}
	close(stop)
	if err := settle(base, 5*time.Second); err != nil {
		t.Fatal(err)
	}
}
