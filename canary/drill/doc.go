// Package drill is the weekly kill-switch drill (`gitgate drill`): it
// proves on a running fleet that the kill switch sends every call to
// Approach 1, measures per gateway how long that takes, checks that a
// forced-open breaker falls back cleanly, and puts everything back
// exactly as it was, while agents keep working.
//
// A run goes preflight (discover and check the gateways, snapshot the
// routing state, take the drill mark on every gateway — the fleet-wide
// lock), flip (the kill switch through the flag source, then the admin
// override on each gateway), hold, restore (the flag file's bytes from the
// snapshot, the overrides as they were), the breaker check, and a final
// comparison with the snapshot. Stop conditions (agents' errors above a
// limit, a gateway that stops answering) abort it and restore at once. A
// run that did not finish (the machine died) left its snapshot in the
// history directory, and Recover puts it back.
//
// Each run leaves a Result in the history directory (JSON and Markdown)
// and metrics for Prometheus (a textfile for node_exporter's textfile
// collector, or a Pushgateway).
package drill
