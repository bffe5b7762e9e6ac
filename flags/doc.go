// Package flags holds gitgate's feature flags: which backend serves each
// operation (a fractional split keyed by the workspace, so that a workspace
// sticks to one backend per operation and raising a stage only moves
// workspaces to Approach 2), how much of each operation is shadowed, and
// one kill switch.
//
// Flags are evaluated with OpenFeature and the flagd provider in process,
// from a flagd JSON file it watches. Anything wrong with the flags — a
// missing, unreadable or invalid file, an evaluation error — means
// Approach 1, counted in a metric and logged. The kill switch also has a
// local override that works when the flag system does not.
package flags
