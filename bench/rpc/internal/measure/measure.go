// Package measure holds what the RPC benchmark's clients share with
// bench/c/loadgen.c: CPU accounting over a measured window, latency
// percentiles, and the RESULT line that bench/run.sh parses.
//
// A window reads, at its two edges, the server's utime+stime from
// /proc/PID/stat, this process's own, and the machine's busy time from
// /proc/stat, so that the RESULT line carries the same fields as loadgen's:
// cpu_us_per_req (server CPU per completed call), cpu_util (the server's
// share of one CPU), gen_util (this client's), other_util (everything
// else), and one loadgen lacks: gen_us_per_req (this client's CPU per
// completed call, for benchmarks of a client library).
package measure

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is CLK_TCK, the unit of /proc/PID/stat's utime and stime: 100
// on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) is fixed by
// the kernel's USER_HZ).
const clockTicks = 100

// Snapshot is one edge of a measured window.
type Snapshot struct {
	at         time.Time
	server     int64 // server utime+stime, ticks; -1 when there is no server pid
	self       int64 // this process's utime+stime, ticks
	machineAll int64 // busy ticks of all CPUs, from /proc/stat
}

// Take reads the counters now. serverPID <= 0 leaves the server out.
func Take(serverPID int) Snapshot {
	s := Snapshot{at: time.Now(), server: -1}
	if serverPID > 0 {
		s.server = procTicks(strconv.Itoa(serverPID))
	}
	s.self = procTicks("self")
	s.machineAll = machineBusy()
	return s
}

// procTicks returns utime+stime of /proc/WHO/stat, or -1.
func procTicks(who string) int64 {
	b, err := os.ReadFile("/proc/" + who + "/stat")
	if err != nil {
		return -1
	}
	// The command name is in parentheses and may hold spaces: count fields
	// after the last ')'. utime and stime are fields 14 and 15 of the line,
	// so the 12th and 13th after it.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	k, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return u + k
}

// machineBusy returns user+nice+system+irq+softirq+steal ticks of all CPUs,
// the same sum bench/run.sh and loadgen use.
func machineBusy() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return -1
	}
	var sum int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseInt(f[i], 10, 64)
		sum += v
	}
	return sum
}

// Result is what one run of a client measured.
type Result struct {
	Calls   int64           // calls completed inside the window
	Errors  int64           // failed calls and replies that did not match, whole run
	Latency []time.Duration // per call in the window; sorted by Line
	Start   Snapshot
	End     Snapshot
}

// Line formats r as loadgen's RESULT line: key=value fields that run.sh reads.
func (r *Result) Line() string {
	secs := r.End.at.Sub(r.Start.at).Seconds()
	var b strings.Builder
	fmt.Fprintf(&b, "RESULT reqs=%d rps=%.0f errors=%d secs=%.3f", r.Calls, float64(r.Calls)/secs, r.Errors, secs)
	if len(r.Latency) > 0 {
		slices.Sort(r.Latency)
		for _, q := range []struct {
			name string
			p    float64
		}{{"p50_us", 0.50}, {"p99_us", 0.99}, {"p999_us", 0.999}} {
			fmt.Fprintf(&b, " %s=%.0f", q.name, float64(Percentile(r.Latency, q.p))/1e3)
		}
	}
	tick := 1e6 / clockTicks // µs per tick
	if r.Start.server >= 0 && r.End.server >= 0 {
		srv := float64(r.End.server - r.Start.server)
		if r.Calls > 0 {
			fmt.Fprintf(&b, " cpu_us_per_req=%.2f", srv*tick/float64(r.Calls))
		}
		fmt.Fprintf(&b, " cpu_util=%.2f", srv/clockTicks/secs)
	}
	self := float64(r.End.self - r.Start.self)
	fmt.Fprintf(&b, " gen_util=%.2f", self/clockTicks/secs)
	if r.Calls > 0 {
		fmt.Fprintf(&b, " gen_us_per_req=%.2f", self*tick/float64(r.Calls))
	}
	if r.Start.machineAll >= 0 && r.End.machineAll >= 0 {
		all := float64(r.End.machineAll - r.Start.machineAll)
		srv := float64(0)
		if r.Start.server >= 0 && r.End.server >= 0 {
			srv = float64(r.End.server - r.Start.server)
		}
		other := (all - srv - self) / clockTicks / secs
		fmt.Fprintf(&b, " other_util=%.2f", max(other, 0))
	}
	return b.String()
}

// Percentile returns the p-quantile (0 < p < 1) of sorted, by the nearest
// rank: the smallest value at or above which lies no more than 1-p of them.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
