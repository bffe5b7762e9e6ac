package configs

import (
	"strings"
	"testing"
	"time"
)

// TestAdmissionConfig: the defaults (computed slots and queue, 30 s), the
// keys set from the file and from GITGATE_ADMISSION_* variables, a
// misspelt key refused with the right one, and each negative value
// refused naming its key.
func TestAdmissionConfig(t *testing.T) {
	c, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Admission; a.Slots != 0 || a.MaxQueue != 0 || a.MaxWait != 30*time.Second {
		t.Fatalf("admission defaults: %+v", a)
	}
	c, err = Load(writeConfig(t, "admission: {slots: 8, max_queue: 64, max_wait: 5s}"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Admission; a.Slots != 8 || a.MaxQueue != 64 || a.MaxWait != 5*time.Second {
		t.Fatalf("admission from the file: %+v", a)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"admission: {slots: -1}", "admission.slots: -1 is negative"},
		{"admission: {max_queue: -5}", "admission.max_queue: -5 is negative"},
		{"admission: {max_wait: -1s}", "admission.max_wait: -1s is negative"},
		{"admission: {max_waits: 1s}", "unknown configuration key admission.max_waits (did you mean admission.max_wait?)"},
	} {
		_, err := Load(writeConfig(t, tc.yaml), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error saying %q", tc.yaml, err, tc.want)
		}
	}
	t.Setenv("GITGATE_ADMISSION_SLOTS", "3")
	t.Setenv("GITGATE_ADMISSION_MAX_WAIT", "2s")
	if c, err = Load("", noEnv); err != nil || c.Admission.Slots != 3 || c.Admission.MaxWait != 2*time.Second {
		t.Fatalf("admission from the environment: %+v, %v", c.Admission, err)
	}
}
