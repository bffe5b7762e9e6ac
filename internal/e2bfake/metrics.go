package e2bfake

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// envdMetrics is the JSON of envd's GET /metrics, field for field as the
// real envd encodes it: e2b-dev/infra packages/envd/internal/host/metrics.go
// (type Metrics), served by API.GetMetrics in
// packages/envd/internal/api/init.go with Cache-Control: no-store.
type envdMetrics struct {
	Timestamp      int64   `json:"ts"`
	CPUCount       uint32  `json:"cpu_count"`
	CPUUsedPercent float32 `json:"cpu_used_pct"`
	MemTotalMiB    uint64  `json:"mem_total_mib"` // deprecated in envd, still sent
	MemUsedMiB     uint64  `json:"mem_used_mib"`  // deprecated in envd, still sent
	MemTotal       uint64  `json:"mem_total"`
	MemUsed        uint64  `json:"mem_used"`
	DiskUsed       uint64  `json:"disk_used"`
	DiskTotal      uint64  `json:"disk_total"`
}

// cpuBook is what the fake measured of one sandbox's processes: the CPU
// time of those that ended (from wait4) and where the last /metrics left
// off, for a percentage over the time since, as envd's cpu.Percent(0)
// gives.
type cpuBook struct {
	finished time.Duration
	lastCPU  time.Duration
	lastAt   time.Time
}

// procEnded adds an ended process's CPU time (its own and its waited-for
// children's) to its sandbox's book.
func (s *Server) procEnded(sandboxID string, st *os.ProcessState) {
	if st == nil {
		return
	}
	s.pmu.Lock()
	defer s.pmu.Unlock()
	s.cpuBookOf(sandboxID).finished += st.UserTime() + st.SystemTime()
}

// cpuBookOf returns sandbox id's book; call with s.pmu held.
func (s *Server) cpuBookOf(id string) *cpuBook {
	if s.cpu == nil {
		s.cpu = map[string]*cpuBook{}
	}
	b := s.cpu[id]
	if b == nil {
		b = &cpuBook{lastAt: time.Now()}
		s.cpu[id] = b
	}
	return b
}

// metrics serves GET /metrics from real measurements of the sandbox's
// processes on this machine: CPU time and resident memory of every
// process descended from one envd started (from /proc), CPU as a
// percentage of the sandbox's CPUs since the last call, memory against the
// sandbox's MemoryMB, and disk as the bytes in the sandbox's directory
// against its file system.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	sb := sandboxOf(r)
	s.pmu.Lock()
	roots := map[int]bool{}
	for pid := range s.procs[sb.ID] {
		roots[int(pid)] = true
	}
	finished := s.cpuBookOf(sb.ID).finished
	s.pmu.Unlock()
	running, rss := treeUsage(roots)
	now := time.Now()
	s.pmu.Lock()
	b := s.cpuBookOf(sb.ID)
	cum := finished + running
	used, elapsed := cum-b.lastCPU, now.Sub(b.lastAt)
	b.lastCPU, b.lastAt = max(cum, b.lastCPU), now
	s.pmu.Unlock()
	var pct float64
	if used > 0 && elapsed > 0 {
		pct = min(100, 100*used.Seconds()/elapsed.Seconds()/float64(s.cfg.CPUCount))
		pct = math.Round(pct*100) / 100 // envd rounds to two decimals
	}
	total := uint64(s.cfg.MemoryMB) << 20
	m := envdMetrics{Timestamp: now.UTC().Unix(), CPUCount: uint32(s.cfg.CPUCount), CPUUsedPercent: float32(pct),
		MemTotalMiB: total >> 20, MemUsedMiB: rss >> 20, MemTotal: total, MemUsed: min(rss, total)}
	m.DiskUsed, m.DiskTotal = diskUse(sb.Dir)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(m)
}

// treeUsage sums the CPU time and resident memory of the processes in
// roots and all their descendants, from /proc/<pid>/stat (proc(5)).
func treeUsage(roots map[int]bool) (cpu time.Duration, rss uint64) {
	if len(roots) == 0 {
		return 0, 0
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, 0
	}
	type stat struct {
		ppid         int
		ticks, pages uint64
	}
	all := map[int]stat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(data[i+1:]) // f[0] is field 3 (state)
		if len(f) < 22 {
			continue
		}
		ppid, _ := strconv.Atoi(string(f[1]))
		ut, _ := strconv.ParseUint(string(f[11]), 10, 64)
		st, _ := strconv.ParseUint(string(f[12]), 10, 64)
		pages, _ := strconv.ParseUint(string(f[21]), 10, 64)
		all[pid] = stat{ppid, ut + st, pages}
	}
	in := func(pid int) bool {
		for hops := 0; pid > 1 && hops < 64; hops++ {
			if roots[pid] {
				return true
			}
			pid = all[pid].ppid
		}
		return false
	}
	page := uint64(os.Getpagesize())
	for pid, st := range all {
		if in(pid) {
			cpu += time.Duration(st.ticks) * time.Second / 100 // USER_HZ is 100 on Linux
			rss += st.pages * page
		}
	}
	return cpu, rss
}

// diskUse is the size of the files under dir and the size of its file
// system.
func diskUse(dir string) (used, total uint64) {
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // a file removed meanwhile is not counted; the walk goes on
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			used += uint64(info.Size())
		}
		return nil
	})
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) == nil {
		total = st.Blocks * uint64(st.Bsize)
	}
	return used, total
}
