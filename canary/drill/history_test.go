package drill

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func fixtureMS(v float64) *float64 { return &v }

// fixtureRun is a run started at start with every part filled in:
// three gateways (the third with no figures, as a gateway that did not
// answer), the breaker, the restore and a service.
func fixtureRun(start time.Time, v Verdict) Result {
	r := Result{
		ID: NewID(start), Start: start, End: start.Add(42*time.Second + 300*time.Millisecond),
		By: "oncall@example", Reason: "weekly drill", Verdict: v,
		Notes:      []string{"gw-2 answered its admin listener slowly (1.2 s)"},
		FlagSource: "/var/lib/gitgate/flags.flagd.json", Revision: "sha256:0123abcd",
		Limits: Limits{MaxTimeToEffectMS: 1000, HoldMS: 5000, MaxErrorRate: 0.05, MinCalls: 20},
		Gateways: []GatewayResult{
			{Name: "gw-1", Admin: "http://127.0.0.1:7421", Following: true, FlipSourceMS: fixtureMS(182.4), FlipOverrideMS: fixtureMS(12.25),
				RestoreMS: fixtureMS(240), ProbeMS: fixtureMS(201), Calls: 340, FailedCalls: 0, ResidualCalls: 0, Probes: 12},
			{Name: "gw-2", Admin: "http://127.0.0.1:7422", Following: true, FlipSourceMS: fixtureMS(611), FlipOverrideMS: fixtureMS(4.5),
				RestoreMS: fixtureMS(590), Calls: 310, FailedCalls: 2, ResidualCalls: 1, Probes: 12, ProbesOnApproach2: 1, ProbeFailures: 1},
			{Name: "gw-3", Admin: "http://127.0.0.1:7423", Following: false, Error: "admin listener: connection refused"},
		},
		Breaker:  &BreakerCheck{Op: "push", ProbeWorkspace: "drill/ws-7", Probes: 10, FellBack: 10, Released: true, Passed: true},
		Restore:  RestoreCheck{FlagSourceIdentical: true, GatewaysRestored: v == Pass},
		Services: []ServiceResult{{Metrics: "http://127.0.0.1:7431/metrics", Received: 0}},
	}
	if v != Pass {
		r.Reasons = []string{"gw-3 never applied the kill switch (admin listener: connection refused)", "gw-2: 1 call reached approach2 after the flip"}
		r.Restore.Differences = []string{"gw-3: kill switch override still set"}
	}
	return r
}

var fixtureStart = time.Date(2026, 12, 1, 10, 3, 7, 0, time.UTC)

func TestSaveWritesBothFilesAtomicallyAndListReadsThemBack(t *testing.T) {
	h := History{Dir: filepath.Join(t.TempDir(), "drills", "history")}
	r := fixtureRun(fixtureStart, Fail)
	jsonPath, mdPath, err := h.Save(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(h.Dir, "20261201T100307Z.json"); jsonPath != want {
		t.Errorf("json path %s, want %s", jsonPath, want)
	}
	if want := filepath.Join(h.Dir, "20261201T100307Z.md"); mdPath != want {
		t.Errorf("markdown path %s, want %s", mdPath, want)
	}
	for path, mode := range map[string]os.FileMode{h.Dir: os.ModeDir | 0o755, jsonPath: 0o644, mdPath: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
		}
	}
	entries, err := os.ReadDir(h.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"20261201T100307Z.json", "20261201T100307Z.md"}; !slices.Equal(names, want) {
		t.Errorf("directory holds %v, want %v (no temporary file left)", names, want)
	}
	md, err := os.ReadFile(mdPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != Markdown(r) {
		t.Errorf("the .md file is not Markdown(r):\n%s", md)
	}
	var raw map[string]any
	js, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["verdict"] != "fail" || raw["id"] != "20261201T100307Z" {
		t.Errorf("JSON fields: id %v verdict %v", raw["id"], raw["verdict"])
	}

	rs, err := h.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || !reflect.DeepEqual(rs[0], r) {
		t.Fatalf("List = %+v, want the saved run %+v", rs, r)
	}
}

func TestSaveRefusesIDsThatAreNotStartTimes(t *testing.T) {
	h := History{Dir: t.TempDir()}
	for _, id := range []string{"", "../20261201T100307Z", "20261201T100307Z/x", "20261201T100307Z.snapshot", "2026-12-01", "20261201T100307"} {
		r := fixtureRun(fixtureStart, Pass)
		r.ID = id
		if _, _, err := h.Save(r); err == nil {
			t.Errorf("Save with ID %q: no error", id)
		}
	}
	entries, err := os.ReadDir(h.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("refused saves left %d files", len(entries))
	}
	r := fixtureRun(fixtureStart, Pass)
	r.ID += "-2"
	if _, _, err := h.Save(r); err != nil {
		t.Errorf("a second run in the same second (%s): %v", r.ID, err)
	}
}

func TestListIsNewestFirstAndSkipsWhatItCannotRead(t *testing.T) {
	h := History{Dir: t.TempDir()}
	if rs, err := h.List(); err != nil || len(rs) != 0 {
		t.Fatalf("empty directory: %v, %v", rs, err)
	}
	if rs, err := (History{Dir: filepath.Join(h.Dir, "absent")}).List(); err != nil || rs != nil {
		t.Fatalf("absent directory: %v, %v; want no run and no error", rs, err)
	}
	// Saved out of order: a pass, a fail a week later, a dry run after it,
	// a refused run before all of them, a second run in the fail's second.
	var ids []string
	for _, r := range []Result{
		fixtureRun(fixtureStart, Pass),
		fixtureRun(fixtureStart.Add(7*24*time.Hour), Fail),
		fixtureRun(fixtureStart.Add(8*24*time.Hour), DryRun),
		fixtureRun(fixtureStart.Add(-7*24*time.Hour), Refused),
		func() Result { r := fixtureRun(fixtureStart.Add(7*24*time.Hour), Aborted); r.ID += "-2"; return r }(),
	} {
		if _, _, err := h.Save(r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// What List must skip: a file that is not JSON, one whose ID is not its
	// name, a directory with a run's name; and what it must ignore: the
	// drill's other files.
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(h.Dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("20261101T100000Z.json", `{"id": "20261101T100000Z", "verdict": `)
	mismatch, err := json.Marshal(fixtureRun(fixtureStart.Add(time.Hour), Pass))
	if err != nil {
		t.Fatal(err)
	}
	write("20261102T100000Z.json", string(mismatch))
	if err := os.Mkdir(filepath.Join(h.Dir, "20261103T100000Z.json"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("snapshot.json", `{"not": "a run"}`)
	write("20261104T100000Z.snapshot.json", `{"not": "a run"}`)
	write(".20261105T100000Z.json.123.tmp", `{"id": "20261105T100000Z"}`)
	write("README", "drills")

	rs, err := h.List()
	var got []string
	for _, r := range rs {
		got = append(got, r.ID)
	}
	want := []string{ids[2], ids[4], ids[1], ids[0], ids[3]}
	if !slices.Equal(got, want) {
		t.Errorf("List = %v, want newest first %v", got, want)
	}
	if err == nil {
		t.Fatal("List reported no error for the damaged files")
	}
	for _, name := range []string{"20261101T100000Z.json", "20261102T100000Z.json", "20261103T100000Z.json"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("List's error does not name %s: %v", name, err)
		}
	}
	for _, name := range []string{"snapshot.json", "20261104T100000Z", "20261105T100000Z", "README"} {
		if strings.Contains(err.Error(), name) {
			t.Errorf("List's error names %s, which is not a run: %v", name, err)
		}
	}

	last, ok, err := h.Last()
	if !ok || last.ID != ids[4] || err == nil {
		t.Errorf("Last = %s, %v, %v; want %s (the dry run is not a run) and List's error", last.ID, ok, err, ids[4])
	}
	lp, ok, _ := h.LastPassed()
	if !ok || lp.ID != ids[0] {
		t.Errorf("LastPassed = %s, %v; want %s", lp.ID, ok, ids[0])
	}
	if _, ok, _ := (History{Dir: filepath.Join(h.Dir, "absent")}).LastPassed(); ok {
		t.Error("LastPassed found a run in an absent directory")
	}
}

func TestSaveReplacesARunsFiles(t *testing.T) {
	h := History{Dir: t.TempDir()}
	r := fixtureRun(fixtureStart, Aborted)
	if _, _, err := h.Save(r); err != nil {
		t.Fatal(err)
	}
	r.Notes = append(r.Notes, "saved again after the restore finished")
	if _, _, err := h.Save(r); err != nil {
		t.Fatal(err)
	}
	rs, err := h.List()
	if err != nil || len(rs) != 1 || !slices.Equal(rs[0].Notes, r.Notes) {
		t.Fatalf("List = %+v, %v; want the second save", rs, err)
	}
}
