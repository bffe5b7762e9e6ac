package local

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/backends/sandbox"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat: 100
// on every Linux architecture Go supports (sysconf(_SC_CLK_TCK) is not
// reachable without cgo).
const clockTicks = 100

// usageBook is what the provider measures of its sandboxes' commands: the
// process groups running in each (every command is its own group, see
// Exec), the CPU time of the commands that finished, and where the last
// Usage left off.
type usageBook struct {
	mu sync.Mutex
	by map[string]*sandboxUsage
}

type sandboxUsage struct {
	groups   map[int]bool  // process group ids of the commands running now
	finished time.Duration // CPU time of the commands that ended
	lastCPU  time.Duration // cumulative CPU time at the last Usage
	lastAt   time.Time
}

func (b *usageBook) of(id string) *sandboxUsage {
	if b.by == nil {
		b.by = map[string]*sandboxUsage{}
	}
	u := b.by[id]
	if u == nil {
		u = &sandboxUsage{groups: map[int]bool{}, lastAt: time.Now()}
		b.by[id] = u
	}
	return u
}

// started notes a command's process group in sandbox id.
func (b *usageBook) started(id string, pgid int) {
	b.mu.Lock()
	b.of(id).groups[pgid] = true
	b.mu.Unlock()
}

// ended notes that the command of group pgid ended after using cpu (its
// own and its waited-for children's, from wait4).
func (b *usageBook) ended(id string, pgid int, cpu time.Duration) {
	b.mu.Lock()
	u := b.of(id)
	delete(u.groups, pgid)
	u.finished += cpu
	b.mu.Unlock()
}

// forget drops a destroyed sandbox's book.
func (b *usageBook) forget(id string) {
	b.mu.Lock()
	delete(b.by, id)
	b.mu.Unlock()
}

// Usage measures sandbox id from /proc: CPU is the CPU time its commands
// used since the last Usage (finished ones from wait4, running ones from
// /proc/<pid>/stat of every process in their groups) over the elapsed time
// and the host's CPUs; memory is the resident memory of its running
// processes against the host's MemTotal (local sandboxes share the host's
// memory). A sandbox that runs nothing uses no memory.
func (p *Provider) Usage(_ context.Context, id string) (sandbox.Usage, error) {
	if _, err := p.lookup(id); err != nil {
		return sandbox.Usage{}, err
	}
	p.usage.mu.Lock()
	u := p.usage.of(id)
	groups := make(map[int]bool, len(u.groups))
	for g := range u.groups {
		groups[g] = true
	}
	finished := u.finished
	p.usage.mu.Unlock()
	running, rss := groupsUsage(groups)
	total, err := memTotal()
	if err != nil {
		return sandbox.Usage{}, backends.Errorf(backends.Internal, "local sandbox usage: %w", err)
	}
	now := time.Now()
	p.usage.mu.Lock()
	cum := finished + running
	used, elapsed := cum-u.lastCPU, now.Sub(u.lastAt)
	u.lastCPU, u.lastAt = max(cum, u.lastCPU), now
	p.usage.mu.Unlock()
	var cpu float64
	if elapsed > 0 && used > 0 {
		cpu = min(1, used.Seconds()/elapsed.Seconds()/float64(runtime.NumCPU()))
	}
	return sandbox.Usage{CPU: cpu, MemUsed: rss, MemTotal: total}, nil
}

// groupsUsage sums the CPU time and resident memory of every process in
// /proc whose process group is in groups.
func groupsUsage(groups map[int]bool) (cpu time.Duration, rss uint64) {
	if len(groups) == 0 {
		return 0, 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	page := uint64(os.Getpagesize())
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it ended meanwhile
		}
		pgrp, ticks, pages, ok := parseStat(data)
		if !ok || !groups[pgrp] {
			continue
		}
		cpu += time.Duration(ticks) * time.Second / clockTicks
		rss += pages * page
	}
	return cpu, rss
}

// parseStat reads the process group (field 5), utime+stime (fields 14 and
// 15) and rss in pages (field 24) of /proc/<pid>/stat (proc(5)). The
// command name (field 2) is in parentheses and may hold spaces, so the
// fields are counted after its closing parenthesis.
func parseStat(data []byte) (pgrp int, ticks, rss uint64, ok bool) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, 0, 0, false
	}
	f := bytes.Fields(data[i+1:]) // f[0] is field 3 (state)
	if len(f) < 22 {
		return 0, 0, 0, false
	}
	g, err1 := strconv.Atoi(string(f[2]))
	ut, err2 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err3 := strconv.ParseUint(string(f[12]), 10, 64)
	r, err4 := strconv.ParseInt(string(f[21]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return 0, 0, 0, false
	}
	return g, ut + st, uint64(max(r, 0)), true
}

// memTotal is the host's MemTotal from /proc/meminfo, in bytes.
func memTotal() (uint64, error) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(data) {
		if rest, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
			f := bytes.Fields(rest)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseUint(string(f[0]), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, os.ErrNotExist
}

var _ sandbox.UsageReader = (*Provider)(nil)
