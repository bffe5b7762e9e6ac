package canary

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/internal/backendtest"
)

// fullEntry is an entry with every field set, so that a field the ledger's
// stores forget fails the round trips below.
func fullEntry(t *testing.T) Entry {
	var e Entry
	v := reflect.ValueOf(&e).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Date(2026, 12, 5, 1, 2, 3, 456_789_000, time.UTC)))
		case f.Type() == reflect.TypeFor[time.Duration]():
			f.SetInt(int64(1234567 * time.Microsecond)) // the ledger keeps microseconds
		case f.Kind() == reflect.String:
			f.SetString(v.Type().Field(i).Name + " <value>")
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Float64:
			f.SetFloat(1.5)
		case f.Kind() == reflect.Int:
			f.SetInt(int64(7 + i))
		default:
			t.Fatalf("fullEntry: give Entry.%s a value", v.Type().Field(i).Name)
		}
	}
	return e
}

// TestEntryLineFormat: the file ledger's lines keep their format (keys,
// order, the duration in milliseconds), and lines written before Entry
// carried typed fields read back.
func TestEntryLineFormat(t *testing.T) {
	e := Entry{At: time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC), Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach2,
		Backend: backends.Approach1, FellBack: true, Category: backends.Unavailable, Duration: 1500 * time.Microsecond}
	const want = `{"at":"2026-11-28T01:00:00Z","kind":"call","op":"push","routed":"approach2","backend":"approach1","fell_back":true,"category":"unavailable","duration_ms":1.5,"stage":0}`
	got, err := json.Marshal(e)
	if err != nil || string(got) != want {
		t.Fatalf("line %s (%v)\nwant %s", got, err, want)
	}
	var back Entry
	if err := json.Unmarshal([]byte(want), &back); err != nil || back != e {
		t.Fatalf("read back %+v (%v), want %+v", back, err, e)
	}
}

// TestEntryLineNewFields: a call's stage (0 included), cost, calls in
// flight and wait are written as stage, cost_usd, in_flight and wait_ms
// (milliseconds, like duration_ms), and read back.
func TestEntryLineNewFields(t *testing.T) {
	e := Entry{At: time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC), Kind: KindCall, Op: backends.OpStatus, Routed: backends.Approach2,
		Backend: backends.Approach2, Duration: 12500 * time.Microsecond, Stage: 50, CostUSD: 0.0025, InFlight: 12, Wait: 3250 * time.Microsecond}
	const want = `{"at":"2026-11-28T01:00:00Z","kind":"call","op":"status","routed":"approach2","backend":"approach2","duration_ms":12.5,"stage":50,"cost_usd":0.0025,"in_flight":12,"wait_ms":3.25}`
	got, err := json.Marshal(e)
	if err != nil || string(got) != want {
		t.Fatalf("line %s (%v)\nwant %s", got, err, want)
	}
	var back Entry
	if err := json.Unmarshal(got, &back); err != nil || back != e {
		t.Fatalf("read back %+v (%v), want %+v", back, err, e)
	}
	// A sandbox's life has no stage: none is written, and it reads back unknown.
	sb := Entry{At: e.At, Kind: KindSandbox, Backend: backends.Approach1, Duration: time.Hour, CostUSD: 0.36}
	got, err = json.Marshal(sb)
	if err != nil || strings.Contains(string(got), `"stage"`) {
		t.Fatalf("sandbox line %s (%v) carries a stage", got, err)
	}
	if err := json.Unmarshal(got, &back); err != nil || back.Stage != -1 || back.CostUSD != 0.36 || back.Duration != time.Hour {
		t.Fatalf("sandbox line read back %+v (%v)", back, err)
	}
}

// TestOldLedgerLineReads: a line written before stages, costs and waits
// were recorded reads back with Stage -1 (unknown) and the rest zero.
func TestOldLedgerLineReads(t *testing.T) {
	const old = `{"at":"2026-11-01T10:00:00Z","kind":"call","op":"push","routed":"approach2","backend":"approach2","category":"","duration_ms":12.5}`
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	if err := os.WriteFile(path, []byte(old+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path, time.Time{})
	want := Entry{At: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), Kind: KindCall, Op: backends.OpPush, Routed: backends.Approach2,
		Backend: backends.Approach2, Duration: 12500 * time.Microsecond, Stage: -1}
	if err != nil || len(got) != 1 || got[0] != want {
		t.Fatalf("old line read back %+v (%v), want %+v", got, err, want)
	}
}

// TestEntryStoresEveryField: every field of an entry survives both stores.
func TestEntryStoresEveryField(t *testing.T) {
	e := fullEntry(t)
	path := filepath.Join(t.TempDir(), "ledger.jsonl")
	if err := NewFileStore(path).Append(t.Context(), []Entry{e}); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadFile(path, time.Time{}); err != nil || len(got) != 1 || got[0] != e {
		t.Fatalf("file store: read back %+v (%v), want %+v", got, err, e)
	}
	store, err := OpenPGStore(t.Context(), backendtest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Append(t.Context(), []Entry{e}); err != nil {
		t.Fatal(err)
	}
	if got, err := store.Read(t.Context(), string(e.Op), time.Time{}); err != nil || len(got) != 1 || got[0] != e {
		t.Fatalf("PostgreSQL store: read back %+v (%v), want %+v", got, err, e)
	}
}
