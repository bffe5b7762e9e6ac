package main

import "testing"

// TestProcessesPerOperation pins how many git processes each operation
// starts (process start-up dominates on small repositories): reads one, a
// commit two (add, commit), file operations none.
func TestProcessesPerOperation(t *testing.T) {
	w := newWorld(t)
	w.startHTTP(t)
	c := w.httpClient(t, agentToken)
	ws := map[string]any{"workspace": "p"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{"workspace": "p"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	steps := []struct {
		tool string
		args map[string]any
		want float64
	}{
		{"clone", with(map[string]any{"url": w.repoURL}), 3}, // clone --no-checkout + read-tree (size limits) + index refresh
		{"status", ws, 1},
		{"diff", ws, 2}, // the untracked files, then the diff
		{"log", ws, 1},
		{"branches", ws, 1},
		{"write_file", with(map[string]any{"path": "a.txt", "content": "a"}), 0},
		{"read_file", with(map[string]any{"path": "a.txt"}), 0},
		{"list_files", ws, 0},
		{"checkout", with(map[string]any{"branch": "topic", "create": true}), 2}, // the refs a new name must not shadow, then checkout
		{"commit", with(map[string]any{"message": "a"}), 3},                      // unmerged paths refused before add (it would mark them resolved), add, commit
		{"push", ws, 2}, // the repository's own config checked, then push
		{"pull", ws, 4}, // config check, HEAD and upstream kept for a size-limit restore, then pull
		{"delete_file", with(map[string]any{"path": "a.txt"}), 0},
		{"list_workspaces", map[string]any{}, 0},
	}
	for _, s := range steps {
		before := w.processes(s.tool)
		w.ok(t, c, s.tool, s.args)
		if got := w.processes(s.tool) - before; got != s.want {
			t.Errorf("%s started %v git processes, want %v", s.tool, got, s.want)
		}
	}
}

// processes returns the git processes started so far for op.
func (w *world) processes(op string) float64 {
	mfs, err := w.app.registry.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != "gitgate_git_processes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
