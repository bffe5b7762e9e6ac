// Package configs holds gitgate's default configuration file, embedded so
// that the binary runs without it and documented so that operators can copy
// it.
package configs

import _ "embed"

// DefaultYAML is configs/gitgate.yaml: every key with its default value.
//
//go:embed gitgate.yaml
var DefaultYAML []byte
