package configs

import (
	"fmt"
	"time"
)

// AdmissionConfig bounds the operations one process runs at once — the
// gateway's embedded engine, and the Approach 2 service's (see
// gitgate.yaml's admission section and backends/admit). A call waits for
// a slot before it takes any lock; past max_queue waiting calls or
// max_wait it is refused as unavailable, having done nothing.
type AdmissionConfig struct {
	// Slots bounds the operations running at once. 0: 4 × GOMAXPROCS.
	Slots int `mapstructure:"slots"`
	// MaxQueue bounds the calls waiting for a slot. 0: 16 × slots.
	MaxQueue int `mapstructure:"max_queue"`
	// MaxWait bounds one call's wait for a slot. 0: 30 s.
	MaxWait time.Duration `mapstructure:"max_wait"`
}

// validateAdmission refuses negative bounds, naming the key.
func (c *Config) validateAdmission() error {
	a := c.Admission
	switch {
	case a.Slots < 0:
		return fmt.Errorf("admission.slots: %d is negative (0: 4 × the CPUs Go uses)", a.Slots)
	case a.MaxQueue < 0:
		return fmt.Errorf("admission.max_queue: %d is negative (0: 16 × admission.slots)", a.MaxQueue)
	case a.MaxWait < 0:
		return fmt.Errorf("admission.max_wait: %s is negative (0: 30s)", a.MaxWait)
	}
	return nil
}
