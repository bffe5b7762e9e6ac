// Package configs is gitgate's configuration: the typed Config with its
// sections, loaded by Load from the embedded defaults (gitgate.yaml, every
// key documented), an optional file and GITGATE_* variables, and validated
// section by section. Secrets are never read from the file: Load resolves
// them through the getenv it is given (cmd passes os.Getenv), and unknown
// keys or GITGATE_* variables are refused by name.
package configs

import _ "embed"

// DefaultYAML is configs/gitgate.yaml: every key with its default value.
//
//go:embed gitgate.yaml
var DefaultYAML []byte
