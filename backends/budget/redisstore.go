package budget

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/backends/rediserr"
)

// RedisStore keeps spend in Redis, shared by a fleet: a hash per month
// (<prefix>budget:spent:<month>, a field per scope, added to with
// HINCRBYFLOAT) kept spendTTL after its last charge, and a key per
// sandbox for its charge mark. Redis errors carry their category
// (rediserr): those of a failover window are unavailable.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisStore returns a store in rdb under prefix (the gateway's
// redis.prefix). The client stays the caller's to close.
func NewRedisStore(rdb redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{rdb: rdb, prefix: prefix}
}

// advanceScript moves a mark "<until µs>:<ended 0|1>" forward and returns
// the previous one; an ended mark does not move.
var advanceScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
local prev, ended = '0', '0'
if v then
  local sep = string.find(v, ':', 1, true)
  prev, ended = string.sub(v, 1, sep - 1), string.sub(v, sep + 1)
end
if ended == '1' then return {prev, ended} end
local nu = prev
if tonumber(ARGV[1]) > tonumber(prev) then nu = ARGV[1] end
redis.call('SET', KEYS[1], nu .. ':' .. ARGV[2], 'PX', ARGV[3])
return {prev, ended}
`)

func (s *RedisStore) markKey(id string) string { return s.prefix + "budget:mark:" + id }
func (s *RedisStore) spentKey(m Month) string  { return s.prefix + "budget:spent:" + string(m) }
func (s *RedisStore) sinceKey(m Month) string  { return s.prefix + "budget:since:" + string(m) }
func micros(t time.Time) string                { return strconv.FormatInt(t.UnixMicro(), 10) }
func fromMicros(v int64) time.Time             { return time.UnixMicro(v).UTC() }

// Advance implements Store.
func (s *RedisStore) Advance(ctx context.Context, sandbox string, until time.Time, end bool) (Mark, error) {
	endArg := "0"
	if end {
		endArg = "1"
	}
	res, err := advanceScript.Run(ctx, s.rdb, []string{s.markKey(sandbox)}, micros(until), endArg, markTTL.Milliseconds()).StringSlice()
	if err != nil {
		return Mark{}, rediserr.Wrap("budget store (Redis)", err)
	}
	if len(res) != 2 {
		return Mark{}, fmt.Errorf("budget store (redis): unexpected answer %q", res)
	}
	us, err := strconv.ParseInt(res[0], 10, 64)
	if err != nil {
		return Mark{}, fmt.Errorf("budget store (redis): mark %q: %w", res[0], err)
	}
	m := Mark{Ended: res[1] == "1"}
	if us > 0 {
		m.Until = fromMicros(us)
	}
	return m, nil
}

// Add implements Store.
func (s *RedisStore) Add(ctx context.Context, month Month, at time.Time, amounts map[string]float64) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for scope, usd := range amounts {
			p.HIncrByFloat(ctx, s.spentKey(month), scope, usd)
		}
		p.SetNX(ctx, s.sinceKey(month), micros(at), 0)
		p.Expire(ctx, s.spentKey(month), spendTTL)
		p.Expire(ctx, s.sinceKey(month), spendTTL)
		return nil
	})
	if err != nil {
		return rediserr.Wrap("budget store (Redis)", err)
	}
	return nil
}

// Spent implements Store.
func (s *RedisStore) Spent(ctx context.Context, month Month) (Spend, error) {
	var all *redis.MapStringStringCmd
	var since *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, s.spentKey(month))
		since = p.Get(ctx, s.sinceKey(month))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Spend{}, rediserr.Wrap("budget store (Redis)", err)
	}
	out := Spend{ByScope: map[string]float64{}}
	for scope, v := range all.Val() {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return Spend{}, fmt.Errorf("budget store (redis): spend of %s: %w", scope, err)
		}
		out.ByScope[scope] = f
	}
	if us, err := strconv.ParseInt(since.Val(), 10, 64); err == nil && us > 0 {
		out.Since = fromMicros(us)
	}
	return out, nil
}

// Close implements Store; the client is the caller's.
func (s *RedisStore) Close() error { return nil }
