// Package canary holds the migration's evidence and its reflexes: the
// ledger every routed call is written to (a file or PostgreSQL, never
// slowing or failing the call), the comparison of shadowed calls, the
// stage analysis that says whether an operation may advance, and the
// automatic rollback that sends an operation back to Approach 1 when
// Approach 2's error rate or latency for it breaches its thresholds over a
// window.
//
// One record flows through all of it: the gateway's router builds an
// Entry for every call and shadow comparison and hands it to the
// Recorder, which writes it to the ledger and gives calls to the
// automatic rollback; the stage analysis (Analyze) reads the same entries
// back from the ledger.
//
// A new decision signal (the cost of an operation, say) therefore takes
// one path: one field on the result (backends.Served, where the backend
// reports it), one on the record (Entry, set where the router builds it;
// TestEntryStoresEveryField fails until the ledger's JSON line and
// PostgreSQL column keep it), and one case in the judge (judgeStage, with
// its threshold in Thresholds and its sum in the stage's tally; and
// Rollback.judge if the signal alone should roll an operation back).
package canary
