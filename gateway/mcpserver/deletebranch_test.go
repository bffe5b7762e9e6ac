package mcpserver

import (
	"testing"

	"github.com/gitgate/gitgate/backends"
)

// TestDeleteBranchText: delete_branch's readable text says what was
// deleted where, with the restore record of a remote deletion.
func TestDeleteBranchText(t *testing.T) {
	for _, c := range []struct {
		res  backends.DeleteBranchResult
		want string
	}{
		{backends.DeleteBranchResult{Branch: "agent/ada/x", Local: true, Head: "0123456789abcdef0123", Remote: true, RestoreID: "20261206T064200Z-1a2b3c4d"},
			`Deleted branch agent/ada/x locally (it was at 0123456789ab) and on the remote (restore record 20261206T064200Z-1a2b3c4d: an operator restores it with gitgate branches restore).`},
		{backends.DeleteBranchResult{Branch: "scratch", Local: true, Head: "0123456789abcdef0123"},
			`Deleted branch scratch locally (it was at 0123456789ab). The remote was not changed.`},
		{backends.DeleteBranchResult{Branch: "agent/ada/y", Remote: true, RestoreID: "r1"},
			`Deleted branch agent/ada/y on the remote (restore record r1: an operator restores it with gitgate branches restore).`},
		{backends.DeleteBranchResult{Branch: "red\x1b[31m"}, `Branch "red\x1b[31m": nothing was deleted.`},
	} {
		res := c.res
		if got := readable(backends.OpDeleteBranch, &res); len(got) != 1 || got[0] != c.want {
			t.Errorf("%+v:\n got %q\nwant %q", c.res, got, c.want)
		}
	}
}
