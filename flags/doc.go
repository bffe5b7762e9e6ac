// Package flags will hold gitgate's feature flags: OpenFeature with the
// flagd provider in process, reading flagd's JSON format from a watched file,
// the flag names (per-operation route and shadow rate, the kill switch), and
// atomic edits of the flag file.
//
// It is empty until per-operation canary routing is built; until then the
// gateway's router sends every operation to Approach 1.
package flags
