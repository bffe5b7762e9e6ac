package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitgate/gitgate/backends"
	"github.com/gitgate/gitgate/flags"
)

// TestDefaultFlagFile: configs/flags.flagd.json is valid, names every
// operation and starts everything on Approach 1 with no shadowing and the
// kill switch off. UPDATE_FLAGS=1 rewrites it from the operation table.
func TestDefaultFlagFile(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "flags.flagd.json")
	if os.Getenv("UPDATE_FLAGS") == "1" {
		if err := flags.NewFile(backends.OpNames()).Save(path); err != nil {
			t.Fatal(err)
		}
	}
	f, err := flags.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Validate(backends.OpNames()); err != nil {
		t.Fatal(err)
	}
	if f.Kill() {
		t.Error("the default flags engage the kill switch")
	}
	for _, op := range backends.OpNames() {
		if _, ok := f.Flags[flags.RouteFlag(op)]; !ok || f.Route(op) != 0 {
			t.Errorf("%s: route flag missing or not at 0%%", op)
		}
		if _, ok := f.Flags[flags.ShadowFlag(op)]; !ok {
			t.Errorf("%s: shadow flag missing", op)
		}
	}
}
