package mcpserver

import (
	"bytes"
	"slices"
	"strings"
)

// hiddenPath is what an agent sees in place of one of the gateway's own
// directories (Config.HidePaths).
const hiddenPath = "<sandbox>"

// pathHider is the Redactor an agent's texts pass through when the gateway
// names directories to hide: secrets are removed first, then every
// occurrence of a hidden directory is replaced by hiddenPath. The
// replacement holds no quote or backslash, so JSON stays well formed.
type pathHider struct {
	Redactor
	paths []string // longest first, so that a parent never cuts a child short
}

func newPathHider(r Redactor, paths []string) Redactor {
	var keep []string
	for _, p := range paths {
		if p = strings.TrimRight(p, "/"); len(p) > 1 {
			keep = append(keep, p)
		}
	}
	if len(keep) == 0 {
		return r
	}
	slices.SortFunc(keep, func(a, b string) int { return len(b) - len(a) })
	return pathHider{Redactor: r, paths: keep}
}

func (h pathHider) String(s string) string {
	s = h.Redactor.String(s)
	for _, p := range h.paths {
		s = strings.ReplaceAll(s, p, hiddenPath)
	}
	return s
}

func (h pathHider) Bytes(b []byte) []byte {
	b = h.Redactor.Bytes(b)
	for _, p := range h.paths {
		b = bytes.ReplaceAll(b, []byte(p), []byte(hiddenPath))
	}
	return b
}
