// Package canary will hold the migration's evidence: shadow comparison
// (normalisers and readable diffs), the canary ledger, stage analysis, the
// stay/advance/hold/rollback report and the weekly kill-switch drill.
//
// It is empty until per-operation canary routing is built.
package canary
