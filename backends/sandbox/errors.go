package sandbox

import "errors"

// ErrMayStillRun marks errors of a command that a provider started but
// could not confirm stopped (the call was cancelled or gave up, and the
// sandbox could not be reached to kill it): it may still be running, and
// writing in its workspace. A caller must not remove or rewrite what the
// command may be writing to; the provider itself runs nothing more in that
// sandbox until it confirmed the command gone. Test with
// errors.Is(err, ErrMayStillRun).
var ErrMayStillRun = errors.New("sandbox: the command may still be running")
