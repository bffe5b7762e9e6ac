package configs

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRedisSentinelKeys: the sentinel keys load from the file and the
// environment (addrs comma-separated), count as Redis configured, and
// keep their defaults.
func TestRedisSentinelKeys(t *testing.T) {
	cfg, err := Load(writeConfig(t, "redis:\n  sentinel:\n    master_name: mymaster\n    addrs: [\"10.0.0.1:26379\", \"sentinel-2:26379\"]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Redis.Sentinel
	if s.MasterName != "mymaster" || !slices.Equal(s.Addrs, []string{"10.0.0.1:26379", "sentinel-2:26379"}) ||
		s.WaitReplicas != 1 || s.WaitTimeout != 500*time.Millisecond || !cfg.Redis.Configured() {
		t.Fatalf("redis: %+v", cfg.Redis)
	}
	t.Setenv("GITGATE_REDIS_SENTINEL_MASTER_NAME", "m2")
	t.Setenv("GITGATE_REDIS_SENTINEL_ADDRS", "a:1,b:2,c:3")
	t.Setenv("GITGATE_REDIS_SENTINEL_WAIT_REPLICAS", "2")
	cfg, err = Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Redis.Sentinel; s.MasterName != "m2" || !slices.Equal(s.Addrs, []string{"a:1", "b:2", "c:3"}) || s.WaitReplicas != 2 {
		t.Fatalf("redis.sentinel from the environment: %+v", s)
	}
}

// TestRedisSentinelValidation: one of redis.addr and redis.sentinel, both
// sentinel keys, host:port addresses, and a wait bounded by the lock TTL;
// each refusal names the key.
func TestRedisSentinelValidation(t *testing.T) {
	cases := map[string]string{
		"addr: \"127.0.0.1:6379\"\n  sentinel:\n    master_name: m\n    addrs: [\"a:1\"]": "redis.addr and redis.sentinel",
		"sentinel:\n    addrs: [\"a:1\"]":                                                 "redis.sentinel.master_name",
		"sentinel:\n    master_name: m":                                                   "redis.sentinel.addrs",
		"sentinel:\n    master_name: m\n    addrs: [\"a\"]":                               "redis.sentinel.addrs: \"a\" is not host:port",
		"sentinel:\n    master_name: m\n    addrs: [\":26379\"]":                          "is not host:port",
		"sentinel:\n    master_name: m\n    addrs: [\"a:99999\"]":                         "is not host:port",
		"sentinel:\n    master_name: m\n    addrs: [\"a:1\", \"a:1\"]":                    "listed twice",
		"sentinel:\n    master_name: m\n    addrs: [\"a:1\"]\n    wait_replicas: -1":      "redis.sentinel.wait_replicas",
		"sentinel:\n    master_name: m\n    addrs: [\"a:1\"]\n    wait_timeout: 5s":       "redis.sentinel.wait_timeout",
		"sentinel:\n    master_name: m\n    addrs: [\"a:1\"]\n  lock_ttl: 500ms":          "redis.lock_ttl",
	}
	for yaml, want := range cases {
		_, err := Load(writeConfig(t, "redis:\n  "+yaml+"\n"), noEnv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("redis:\n  %s\nloaded with error %v, want one naming %q", yaml, err, want)
		}
	}
	if _, err := Load(writeConfig(t, "redis:\n  sentinel:\n    master_name: m\n    addrs: [\"a:1\"]\n    wait_replicas: 0\n"), noEnv); err != nil {
		t.Errorf("wait_replicas 0 refused: %v", err)
	}
}
