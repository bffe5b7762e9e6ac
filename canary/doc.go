// Package canary holds the migration's evidence and its reflexes: the
// ledger every routed call is written to (a file or PostgreSQL, never
// slowing or failing the call), the comparison of shadowed calls, the
// judge (Judge) that says whether an operation's canary stage may
// advance, must hold or roll back, and the automatic rollback that sends
// an operation back to Approach 1 as soon as the judge finds Approach 2
// worse than Approach 1 over the same stage.
//
// One record flows through all of it: the gateway's router builds an
// Entry for every call and shadow comparison and hands it to the
// Recorder, which writes it to the ledger and gives calls and comparisons
// to the automatic rollback; `gitgate canary advance` and the report read
// the same entries back from the ledger, as hourly roll-ups (Key, Cell)
// through a Source (FileSource, PGSource) that keeps long periods cheap.
// All three sum them into the same summaries (Calls, Shadows) and ask the
// same judge: one place decides. The report (BuildReport) adds the
// stay-or-migrate decision computed from Approach 1's weeks (decision.go)
// and writes Markdown, JSON and HTML with charts.
//
// The weekly kill-switch drill (`gitgate drill`, package canary/drill)
// engages the kill switch and forces breakers open on purpose, so the
// calls and comparisons a gateway routes during it carry the drill's id
// (Entry.Drill). They roll up apart (StageDrill): no judgement, baseline,
// chart, signal or automatic rollback counts them, and the report says how
// many there were. Each gateway records the drill's window (KindDrill;
// Cell.Drills), which the report shows once per drill.
//
// A new decision signal (the cost of an operation, say) therefore takes
// one path: one field on the result (backends.Served, where the backend
// reports it), one on the record (Entry, set where the router builds it;
// TestEntryStoresEveryField fails until the ledger's JSON line and
// PostgreSQL column keep it), its sum in the summaries (Calls.Add), and
// one test in the judge (Judge, with its setting in JudgeConfig; a
// regression there rolls the operation back automatically too).
package canary
