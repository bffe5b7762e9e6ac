// Package canary holds the migration's evidence and its reflexes: the
// ledger every routed call is written to (never slowing or failing the
// call), and the automatic rollback that sends an operation back to
// Approach 1 when Approach 2's error rate or latency for it breaches its
// thresholds over a window. Shadow comparison, stage analysis, the report
// and the drill will live here too.
package canary
