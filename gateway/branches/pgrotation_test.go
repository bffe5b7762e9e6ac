package branches

import (
	"testing"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/pgdsn"
	"github.com/gitgate/gitgate/internal/pgdsn/pgdsntest"
)

// TestPGStoreFollowsRotatedDSN: with pgdsn.Follow, the store's connections
// opened after a rotation of its DSN run as the rotated DSN's user.
func TestPGStoreFollowsRotatedDSN(t *testing.T) {
	dsn := backendtest.PostgresDSN(t)
	role, rotated := pgdsntest.Role(t, dsn)
	cur := pgdsntest.NewDSN(dsn)
	s, err := OpenPGStore(t.Context(), dsn, pgdsn.Follow("branches", cur.Get, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pgdsntest.CheckFollows(t, s.pool, cur, rotated, role)
}
