package redislock

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gitgate/gitgate/internal/backendtest"
	"github.com/gitgate/gitgate/internal/testkit"
)

// renewalFaults fails the first fail renewal commands of its client (as a
// failover's replica-less moment fails them) and counts the renewals that
// get through afterwards.
type renewalFaults struct {
	mu       sync.Mutex
	fail     int
	attempts int
	passed   int
}

var errRenewalFault = errors.New("injected renewal failure")

func (f *renewalFaults) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *renewalFaults) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !isRenewal(strings.ToLower(cmd.Name()), cmd.Args()) {
			return next(ctx, cmd)
		}
		f.mu.Lock()
		f.attempts++
		failing := f.attempts <= f.fail
		f.mu.Unlock()
		if failing {
			cmd.SetErr(errRenewalFault)
			return errRenewalFault
		}
		err := next(ctx, cmd)
		if err == nil {
			f.mu.Lock()
			f.passed++
			f.mu.Unlock()
		}
		return err
	}
}

func (f *renewalFaults) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// isRenewal reports whether args are the renewal script's EVALSHA or EVAL.
func isRenewal(name string, args []any) bool {
	if len(args) < 2 {
		return false
	}
	body, _ := args[1].(string)
	switch name {
	case "evalsha":
		return body == renewScript.Hash()
	case "eval":
		sum := sha1.Sum([]byte(body)) //nolint:gosec // Redis names scripts by SHA-1
		return hex.EncodeToString(sum[:]) == renewScript.Hash()
	}
	return false
}

// TestRenewalRetriedBeforeTheLeaseRunsOut: a lease whose renewal fails
// twice is renewed by a third attempt that still has time to succeed
// before TTL/2 has passed since the grant. The watchdog renews at TTL/3
// (5 s here) and retries TTL/10 later (6.5 s); its next retry used to be
// timed at TTL/2 itself (7.5 s), cut off by the lease's expiry before it
// could run, so that a Redis back a moment before that (a Sentinel
// failover's promoted master getting its replica back) saved no lease.
func TestRenewalRetriedBeforeTheLeaseRunsOut(t *testing.T) {
	c := backendtest.Redis(t)
	faults := &renewalFaults{fail: 2}
	c.AddHook(faults)
	l := New(c, Options{Prefix: backendtest.RedisPrefix(t, c), TTL: 15 * time.Second})
	le, err := l.Acquire(t.Context(), "ws")
	if err != nil {
		t.Fatal(err)
	}
	defer le.Release(context.Background())
	testkit.EventuallyNil(t, "a renewal gets through after the two failed ones", func() error {
		select {
		case <-le.Lost():
			t.Fatal("the lease was lost: no renewal attempt could succeed after the failed ones")
		default:
		}
		faults.mu.Lock()
		defer faults.mu.Unlock()
		if faults.passed == 0 {
			return fmt.Errorf("%d renewal attempts, none through yet", faults.attempts)
		}
		return nil
	})
	select {
	case <-le.Lost():
		t.Fatal("the lease was lost although a renewal got through")
	default:
	}
}
