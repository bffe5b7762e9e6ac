// Package promreg registers a collector once per registry: parts built
// more than once on one registry (the gateway's router and the engine it
// embeds, two E2B clients) share the first registration's collector
// instead of panicking on a duplicate.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns it; when reg already holds an
// equal collector (same names, labels and help) it returns that one, so
// that every caller counts into the same series. A nil reg registers
// nothing. A conflicting collector (same name, other labels) panics, as
// MustRegister does: that is a programming error.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}
