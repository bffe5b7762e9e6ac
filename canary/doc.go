// Package canary holds the migration's evidence and its reflexes: the
// ledger every routed call is written to (a file or PostgreSQL, never
// slowing or failing the call), the comparison of shadowed calls, the
// stage analysis that says whether an operation may advance, and the
// automatic rollback that sends an operation back to Approach 1 when
// Approach 2's error rate or latency for it breaches its thresholds over a
// window.
package canary
