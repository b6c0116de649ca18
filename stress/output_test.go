//go:build stress

package stress

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// outputCheck reads tend's stdout and checks every line as it comes.
type outputCheck struct {
	next     map[string]int // next sequence number per lines service
	bad      int            // torn, mixed or corrupt lines
	outOfSeq int
	bigBytes int64
	bigLines int
	maxLine  int
	other    int
	first    []string // the first few bad lines
}

func (c *outputCheck) line(l []byte) {
	c.maxLine = max(c.maxLine, len(l))
	name, payload, ok := bytes.Cut(l, []byte(" | "))
	if !ok {
		c.other++
		return
	}
	if string(name) == "big" {
		if len(bytes.Trim(payload, "x")) != 0 {
			c.bad++
			c.note(l)
		}
		c.bigBytes += int64(len(payload))
		c.bigLines++
		return
	}
	// payload: "NAME SEQ BODY CRC"
	i := bytes.LastIndexByte(payload, ' ')
	if i < 0 {
		c.bad++
		c.note(l)
		return
	}
	body, sum := payload[:i], string(payload[i+1:])
	if fmt.Sprintf("%08x", crc32.ChecksumIEEE(body)) != sum {
		c.bad++
		c.note(l)
		return
	}
	f := bytes.Fields(body)
	if len(f) < 2 || string(f[0]) != string(name) {
		c.bad++
		c.note(l)
		return
	}
	seq, _ := strconv.Atoi(string(f[1]))
	if seq != c.next[string(name)] {
		c.outOfSeq++
		c.note(l)
	}
	c.next[string(name)] = seq + 1
}

func (c *outputCheck) note(l []byte) {
	if len(c.first) < 3 {
		c.first = append(c.first, string(l[:min(len(l), 120)]))
	}
}

// TestOutputFlood: 10 services write 200,000 lines each while another
// writes 1 GiB without a newline. No line may be lost, torn or mixed, the
// long one comes out in 64 KiB pieces, and tend's memory stays bounded.
func TestOutputFlood(t *testing.T) {
	const services, lines = 10, 200000
	const big = 1 << 30
	var b strings.Builder
	b.WriteString("control_socket = \"\"\n")
	for i := range services {
		fmt.Fprintf(&b, "[services.svc%d]\ncommand = [%q, \"lines\", \"svc%d\", \"%d\"]\nrestart = \"never\"\n", i, helperBin, i, lines)
	}
	fmt.Fprintf(&b, "[services.big]\ncommand = [%q, \"bigline\", \"%d\"]\nrestart = \"never\"\n", helperBin, big)
	cfg := writeFile(t, "tend.toml", b.String())
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	check := &outputCheck{next: map[string]int{}}
	read := make(chan struct{})
	go func() {
		defer close(read)
		br := bufio.NewReaderSize(r, 1<<20)
		for {
			l, err := br.ReadSlice('\n')
			if err == bufio.ErrBufferFull {
				// Longer than any line tend writes (64 KiB + prefix).
				check.bad++
				for err == bufio.ErrBufferFull {
					_, err = br.ReadSlice('\n')
				}
				continue
			}
			if len(l) > 0 && l[len(l)-1] == '\n' {
				check.line(l[:len(l)-1])
			}
			if err != nil {
				if err != io.EOF {
					t.Error(err)
				}
				return
			}
		}
	}()
	startAt := time.Now()
	p := start(t, spec{args: []string{"--config", cfg}, pid1: true, cpu: -1, stdout: w})
	w.Close()
	ws := watchStats(p.pid, 50*time.Millisecond)
	code := p.wait(10 * time.Minute)
	elapsed := time.Since(startAt)
	st, maxThreads := ws.end()
	<-read
	r.Close()
	if code != 0 {
		t.Errorf("tend exit %d\n%s", code, tail(p.err.String(), 20))
	}
	missing := 0
	for i := range services {
		missing += lines - check.next[fmt.Sprintf("svc%d", i)]
	}
	t.Logf("%d lines from %d services and %d MiB without a newline in %s: %d missing, %d torn or mixed, %d out of order; the long line came as %d pieces of at most %d bytes (%d MiB)",
		services*lines, services, big>>20, elapsed.Round(time.Millisecond), missing, check.bad, check.outOfSeq, check.bigLines, check.maxLine, check.bigBytes>>20)
	t.Logf("tend: %s, at most %d threads; load %s", st, maxThreads, loadavg())
	if missing != 0 || check.bad != 0 || check.outOfSeq != 0 || check.bigBytes != big {
		t.Errorf("output damaged: first bad lines %q", check.first)
	}
}
