package canary

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/internal/backendtest"
)

// The report's sources over four weeks of 100 agents' ledger: about 1.5
// calls a minute per agent in working hours (08:00–18:00 UTC, weekdays), a
// tenth of that otherwise, a tenth of the calls shadowed, a sandbox per
// agent and hour: about 2.5 million records. Building the ledger takes a
// while, so the benchmarks run only with GITGATE_BENCH_BIG=1:
//
//	GITGATE_BENCH_BIG=1 go test -run '^$' -bench 'ReportSource' -benchtime 1x ./canary
//
// Each reports, for a read of the four weeks into weekly totals, its wall
// time and peak heap (HeapInuse sampled every 2 ms), for the first read
// (the roll-up built), a second (the roll-up used) and a read with no hour
// complete (every record streamed raw).
var bigLedger = genLedger{Start: time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC), Hours: 28 * 24, Agents: 100, Rate: 1.5, Seed: 42}

func benchBig(b *testing.B) {
	if os.Getenv("GITGATE_BENCH_BIG") != "1" {
		b.Skip("set GITGATE_BENCH_BIG=1 to build the four-week ledger and run this benchmark")
	}
}

// buildBig writes the big ledger through put in batches and returns how
// many records and calls it wrote.
func buildBig(b *testing.B, put func([]Entry) error) (records, calls int64) {
	b.Helper()
	start := time.Now()
	batch := make([]Entry, 0, 50_000)
	err := bigLedger.run(func(e Entry) error {
		records++
		if e.Kind == KindCall {
			calls++
		}
		batch = append(batch, e)
		if len(batch) == cap(batch) {
			err := put(batch)
			batch = batch[:0]
			return err
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = put(batch)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("ledger of %d records (%d calls) built in %v", records, calls, time.Since(start).Round(time.Millisecond))
	return records, calls
}

// heapPeak samples HeapInuse until stop is called, which returns the
// highest sample.
func heapPeak() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peak = max(peak, m.HeapInuse)
	}
	runtime.GC()
	sample()
	wg.Go(func() {
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	})
	return func() uint64 {
		close(done)
		wg.Wait()
		return peak
	}
}

// weekly reads the big ledger's four weeks from src into weekly totals
// per operation, backend and stage (what a report keeps), reporting the
// read's peak heap, and checks the calls add up.
func weekly(b *testing.B, src Source, calls int64) {
	b.Helper()
	stop := heapPeak()
	weeks := Rollup{}
	cells := 0
	err := src.Cells(context.Background(), bigLedger.Start, bigLedger.Start.Add(time.Duration(bigLedger.Hours)*time.Hour), func(k Key, c *Cell) error {
		cells++
		k.Hour = bigLedger.Start.Add(k.Hour.Sub(bigLedger.Start) / (7 * 24 * time.Hour) * (7 * 24 * time.Hour))
		if weeks[k] == nil {
			weeks[k] = &Cell{}
		}
		weeks[k].Merge(c)
		return nil
	})
	peak := stop()
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, c := range weeks {
		if c.Calls != nil {
			n += c.Calls.N
		}
	}
	if n != calls {
		b.Fatalf("the read found %d calls, the ledger holds %d", n, calls)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(cells), "cells")
}

func BenchmarkReportSourcePG4Weeks(b *testing.B) {
	benchBig(b)
	ctx := context.Background()
	dsn := backendtest.PostgresDSN(b)
	src, err := OpenPGSource(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	src.Logger = quiet
	complete := bigLedger.Start.Add(time.Duration(bigLedger.Hours)*time.Hour + time.Hour)
	_, calls := buildBig(b, func(es []Entry) error {
		i := 0
		_, err := copyLedger(ctx, src, func() (Entry, bool) {
			if i == len(es) {
				return Entry{}, false
			}
			i++
			return es[i-1], true
		})
		return err
	})
	if _, err := src.pool.Exec(ctx, `VACUUM ANALYZE gitgate_canary_ledger`); err != nil {
		b.Fatal(err)
	}
	var size string
	_ = src.pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('gitgate_canary_ledger'))`).Scan(&size)
	b.Logf("ledger table and indexes: %s", size)
	reset := func(b *testing.B) {
		if _, err := src.pool.Exec(ctx, `TRUNCATE gitgate_canary_rollup;
			UPDATE gitgate_canary_rollup_mark SET hour = '0001-01-01 00:00:00+00', last_id = 0, run = 0`); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("raw", func(b *testing.B) { // no hour complete: every row streamed
		src.Now = fixedNow(bigLedger.Start)
		for range b.N {
			b.StopTimer()
			reset(b)
			b.StartTimer()
			weekly(b, src, calls)
		}
	})
	src.Now = fixedNow(complete)
	b.Run("first", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			reset(b)
			b.StartTimer()
			weekly(b, src, calls)
		}
		st := src.LastRead()
		b.ReportMetric(float64(st.RolledRows), "rolled-rows")
	})
	b.Run("second", func(b *testing.B) {
		for range b.N {
			weekly(b, src, calls)
		}
		if st := src.LastRead(); st.RolledRows != 0 || st.RawRows != 0 || st.RollupCells == 0 {
			b.Fatalf("the second read did not use the roll-up: %+v", st)
		}
	})
	var rollup string
	_ = src.pool.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('gitgate_canary_rollup'))`).Scan(&rollup)
	b.Logf("roll-up table: %s", rollup)
}

func BenchmarkReportSourceFile4Weeks(b *testing.B) {
	benchBig(b)
	path := filepath.Join(b.TempDir(), "ledger.jsonl")
	store := NewFileStore(path)
	_, calls := buildBig(b, func(es []Entry) error { return store.Append(context.Background(), es) })
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("ledger file: %d MiB", info.Size()>>20)
	src := &FileSource{Path: path, Logger: quiet}
	complete := bigLedger.Start.Add(time.Duration(bigLedger.Hours)*time.Hour + time.Hour)
	reset := func(b *testing.B) {
		if err := os.Remove(RollupPath(path)); err != nil && !os.IsNotExist(err) {
			b.Fatal(err)
		}
	}
	b.Run("raw", func(b *testing.B) {
		src.Now = fixedNow(bigLedger.Start)
		for range b.N {
			b.StopTimer()
			reset(b)
			b.StartTimer()
			weekly(b, src, calls)
		}
	})
	src.Now = fixedNow(complete)
	b.Run("first", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			reset(b)
			b.StartTimer()
			weekly(b, src, calls)
		}
	})
	b.Run("second", func(b *testing.B) {
		for range b.N {
			weekly(b, src, calls)
		}
		if st := src.LastRead(); st.LedgerBytes != 0 || st.RollupCells == 0 {
			b.Fatalf("the second read did not use the roll-up: %+v", st)
		}
	})
	if roll, err := os.Stat(RollupPath(path)); err == nil {
		b.Logf("roll-up file: %d KiB", roll.Size()>>10)
	}
}
