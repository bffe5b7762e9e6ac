package canary

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/jackc/pgx/v5"
)

// TestPGStoreRoundTrip: entries recorded through a ledger on PostgreSQL
// read back whole, filtered by operation and time, and the stage analysis
// reads them as it reads the file store's.
func TestPGStoreRoundTrip(t *testing.T) {
	dsn := backendtest.PostgresDSN(t)
	store, err := OpenPGStore(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if again, err := OpenPGStore(t.Context(), dsn); err != nil { // the table exists: opening twice is fine
		t.Fatal(err)
	} else {
		again.Close()
	}
	l := NewLedger(store, LedgerConfig{FlushEvery: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(t.Context())
	go l.Run(ctx)
	at := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	for i := range 250 {
		e := Entry{At: at.Add(time.Duration(i) * time.Second), Kind: KindCall, Op: backends.OpStatus, Routed: backends.Approach2, Backend: backends.Approach2, Duration: 2 * time.Millisecond}
		if i%2 == 1 {
			e.Routed, e.Backend = backends.Approach1, backends.Approach1
		}
		l.Record(e)
	}
	l.Record(Entry{At: at, Kind: KindComparison, Op: backends.OpStatus, Routed: backends.Approach1, Backend: backends.Approach2, Outcome: OutcomeMismatch, Detail: "-a\n+b"})
	l.Record(Entry{At: at, Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach2, Backend: backends.Approach1, FellBack: true, Category: backends.Unavailable})
	cancel()
	l.Wait()

	all, err := store.Read(t.Context(), "", time.Time{})
	if err != nil || len(all) != 252 {
		t.Fatalf("read %d entries (%v), want 252", len(all), err)
	}
	push, err := store.Read(t.Context(), "push", time.Time{})
	if err != nil || len(push) != 1 || !push[0].FellBack || push[0].Category != "unavailable" || push[0].Backend != "approach1" || !push[0].At.Equal(at) {
		t.Fatalf("push entries %+v %v", push, err)
	}
	late, err := store.Read(t.Context(), "status", at.Add(200*time.Second))
	if err != nil || len(late) != 50 || late[0].At != at.Add(200*time.Second) {
		t.Fatalf("%d status entries from 200 s (%v), want 50 starting there", len(late), err)
	}
	status, _ := store.Read(t.Context(), "status", time.Time{})
	var mismatch *Entry
	for i := range status {
		if status[i].Kind == "comparison" {
			mismatch = &status[i]
		}
	}
	if mismatch == nil || mismatch.Outcome != "mismatch" || mismatch.Detail != "-a\n+b" {
		t.Fatalf("comparison not read back: %+v", mismatch)
	}
	a1, a2 := NewCalls(), NewCalls()
	for _, e := range status {
		switch {
		case e.Kind == KindCall && e.Routed == backends.Approach1:
			a1.Add(e)
		case e.Kind == KindCall && e.Routed == backends.Approach2:
			a2.Add(e)
		}
	}
	if p95 := a2.Latency.Quantile(0.95); a1.N != 125 || a2.N != 125 || math.Abs(p95-2) > 2*SketchAccuracy {
		t.Fatalf("the summaries found no calls in the PostgreSQL ledger: %d and %d calls, approach2 P95 %v ms", a1.N, a2.N, p95)
	}
}

// TestPGStoreErrorsHideTheDSN: a DSN with a password that cannot connect
// gives an error that does not contain the password.
func TestPGStoreErrorsHideTheDSN(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://gitgate:hunter2-secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=1",
		"postgres://gitgate:hunter2-secret@[::1", // does not parse
	} {
		_, err := OpenPGStore(ctx, dsn)
		if err == nil {
			t.Fatalf("%q: opened", dsn)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
}

// TestPGStoreUpgradesAnOldTable: a ledger table made before stages, costs
// and waits were recorded gains their columns when a store opens it; its
// rows read back with Stage -1 (unknown), and new entries keep them.
func TestPGStoreUpgradesAnOldTable(t *testing.T) {
	dsn := backendtest.PostgresDSN(t)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	const oldTable = `CREATE TABLE gitgate_canary_ledger (
	id          bigserial PRIMARY KEY,
	at          timestamptz NOT NULL,
	kind        text NOT NULL,
	op          text NOT NULL,
	routed      text NOT NULL DEFAULT '',
	backend     text NOT NULL DEFAULT '',
	fell_back   boolean NOT NULL DEFAULT false,
	category    text NOT NULL DEFAULT '',
	duration_ms double precision NOT NULL DEFAULT 0,
	outcome     text NOT NULL DEFAULT '',
	detail      text NOT NULL DEFAULT ''
)`
	if _, err := conn.Exec(t.Context(), oldTable); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	if _, err := conn.Exec(t.Context(), `INSERT INTO gitgate_canary_ledger (at, kind, op, routed, backend, duration_ms)
		VALUES ($1, 'call', 'push', 'approach2', 'approach2', 12.5)`, at); err != nil {
		t.Fatal(err)
	}
	store, err := OpenPGStore(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fresh := Entry{At: at.Add(time.Minute), Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach2, Backend: backends.Approach2,
		Duration: 8 * time.Millisecond, Stage: 10, CostUSD: 0.001, InFlight: 3, Wait: 1500 * time.Microsecond}
	if err := store.Append(t.Context(), []Entry{fresh}); err != nil {
		t.Fatal(err)
	}
	got, err := store.Read(t.Context(), "push", time.Time{})
	old := Entry{At: at, Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach2, Backend: backends.Approach2,
		Duration: 12500 * time.Microsecond, Stage: -1}
	if err != nil || len(got) != 2 || got[0] != old || got[1] != fresh {
		t.Fatalf("read back %+v (%v), want %+v and %+v", got, err, old, fresh)
	}
}
