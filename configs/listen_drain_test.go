package configs

import (
	"strings"
	"testing"
	"time"
)

// TestListenDrainDefaults: a gateway keeps serving 5 s after SIGTERM, then
// waits up to 15 s for its calls, unless configured otherwise (also from
// the environment).
func TestListenDrainDefaults(t *testing.T) {
	cfg, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.DrainDelay != 5*time.Second || cfg.Listen.DrainTimeout != 15*time.Second {
		t.Fatalf("drain_delay %s, drain_timeout %s", cfg.Listen.DrainDelay, cfg.Listen.DrainTimeout)
	}
	cfg, err = Load(writeConfig(t, "listen: {drain_delay: 0s, drain_timeout: 1m}"), noEnv)
	if err != nil || cfg.Listen.DrainDelay != 0 || cfg.Listen.DrainTimeout != time.Minute {
		t.Fatalf("set: %+v %v", cfg.Listen, err)
	}
	t.Setenv("GITGATE_LISTEN_DRAIN_DELAY", "2s")
	if cfg, err = Load("", noEnv); err != nil || cfg.Listen.DrainDelay != 2*time.Second {
		t.Fatalf("GITGATE_LISTEN_DRAIN_DELAY=2s: %+v %v", cfg.Listen, err)
	}
}

// TestListenDrainRefusals: a negative delay, or no time at all for the
// calls in flight, is refused naming the key.
func TestListenDrainRefusals(t *testing.T) {
	for yaml, key := range map[string]string{
		"listen: {drain_delay: -1s}":   "listen.drain_delay",
		"listen: {drain_timeout: 0s}":  "listen.drain_timeout",
		"listen: {drain_timeout: -5s}": "listen.drain_timeout",
	} {
		if _, err := Load(writeConfig(t, yaml), noEnv); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("config %q: error %v, want one naming %s", yaml, err, key)
		}
	}
}
