package lock

import "context"

type heldKey struct{ key string }

// WithLease returns ctx carrying lease as held for key. A Reentrant locker
// asked for key under this context returns the held lease instead of
// waiting for itself.
func WithLease(ctx context.Context, key string, lease Lease) context.Context {
	return context.WithValue(ctx, heldKey{key}, lease)
}

// Reentrant wraps a Locker so that code already holding a key's lease (see
// WithLease) can call into code that locks the same key: the journal layer
// of Approach 2 takes the workspace lock to get its fence, then runs the
// engine, which locks the workspace itself.
func Reentrant(inner Locker) Locker { return reentrant{inner} }

type reentrant struct{ inner Locker }

func (r reentrant) Acquire(ctx context.Context, key string) (Lease, error) {
	if held, ok := ctx.Value(heldKey{key}).(Lease); ok {
		return borrowed{held}, nil
	}
	return r.inner.Acquire(ctx, key)
}

// borrowed is a held lease seen from inside: releasing it is the owner's job.
type borrowed struct{ Lease }

func (borrowed) Release(context.Context) error { return nil }
