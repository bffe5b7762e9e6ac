package canary

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// volatile are result fields that legitimately differ between backends and
// runs: who served, how long it took, when a workspace was last used, and
// the notices of one call (a workspace restored by the call that served
// first).
var volatile = map[string]bool{"backend": true, "fell_back": true, "duration_ms": true, "last_used": true, "notices": true}

// maxDiffLines caps a diff's length.
const maxDiffLines = 20

// Compare returns "" when the primary's and the shadow's results agree
// once volatile fields are removed, and otherwise a readable diff: one line
// per differing field, "path: primary … / shadow …", at most 20 lines.
func Compare(primary, shadow any) (string, error) {
	p, err := normalise(primary)
	if err != nil {
		return "", err
	}
	s, err := normalise(shadow)
	if err != nil {
		return "", err
	}
	var lines []string
	diff("", p, s, &lines)
	if len(lines) > maxDiffLines {
		lines = append(lines[:maxDiffLines], fmt.Sprintf("… and %d more differences", len(lines)-maxDiffLines))
	}
	return strings.Join(lines, "\n"), nil
}

func normalise(v any) (any, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	if m, ok := out.(map[string]any); ok {
		for k := range volatile {
			delete(m, k)
		}
		if ws, ok := m["workspaces"].([]any); ok {
			for _, w := range ws {
				if wm, ok := w.(map[string]any); ok {
					delete(wm, "last_used")
				}
			}
		}
	}
	return out, nil
}

func diff(path string, a, b any, out *[]string) {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		keys := make([]string, 0, len(am)+len(bm))
		for k := range am {
			keys = append(keys, k)
		}
		for k := range bm {
			if _, ok := am[k]; !ok {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			diff(path+"."+k, am[k], bm[k], out)
		}
		return
	}
	al, aok := a.([]any)
	bl, bok := b.([]any)
	if aok && bok && len(al) == len(bl) {
		for i := range al {
			diff(fmt.Sprintf("%s[%d]", path, i), al[i], bl[i], out)
		}
		return
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		*out = append(*out, fmt.Sprintf("%s: primary %s / shadow %s", strings.TrimPrefix(path, "."), clip(ja), clip(jb)))
	}
}

func clip(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}
