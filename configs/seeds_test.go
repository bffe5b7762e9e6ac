package configs

import (
	"slices"
	"testing"
)

// TestPoolSeeds: sandbox.pool.seeds lists the repositories cloned into
// every warm sandbox, from the file or the environment (comma-separated);
// none by default.
func TestPoolSeeds(t *testing.T) {
	cfg, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Sandbox.Pool.Seeds) != 0 {
		t.Fatalf("default seeds %q, want none", cfg.Sandbox.Pool.Seeds)
	}
	want := []string{"https://github.com/org/a.git", "https://github.com/org/b.git"}
	cfg, err = Load(writeConfig(t, "sandbox:\n  pool:\n    seeds: [https://github.com/org/a.git, https://github.com/org/b.git]"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Sandbox.Pool.Seeds, want) {
		t.Fatalf("seeds from the file %q, want %q", cfg.Sandbox.Pool.Seeds, want)
	}
	t.Setenv("GITGATE_SANDBOX_POOL_SEEDS", "https://github.com/org/a.git,https://github.com/org/b.git")
	cfg, err = Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Sandbox.Pool.Seeds, want) {
		t.Fatalf("seeds from the environment %q, want %q", cfg.Sandbox.Pool.Seeds, want)
	}
}
