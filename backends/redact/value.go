package redact

// Error returns err with a redacted message. It returns nil for nil and err
// itself when its message contains nothing to mask (so comparisons such as
// err == io.EOF keep working). Otherwise the result's Error() is redacted and
// its Unwrap returns err, so errors.Is and errors.As still reach the original
// chain. Note that errors.As can therefore hand a caller the unredacted
// original; redact again before printing anything obtained that way.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := r.String(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

// redactedError carries a redacted message over the original error chain. It
// deliberately has no Format method, so %+v prints the redacted message rather
// than the original's (possibly detailed) formatting.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Value deep-redacts a JSON-like value and returns a new value: strings are
// redacted, []any and map[string]any are copied with every element (and map
// key) redacted recursively; []string and map[string]string are handled the
// same way. Any other type is returned unchanged. If two map keys redact to
// the same key, one of the entries is kept.
func (r *Redactor) Value(v any) any {
	switch x := v.(type) {
	case string:
		return r.String(x)
	case []any:
		return mapSlice(x, r.Value)
	case []string:
		return mapSlice(x, r.String)
	case map[string]any:
		return mapMap(x, r.String, r.Value)
	case map[string]string:
		return mapMap(x, r.String, r.String)
	default:
		return v
	}
}

// mapSlice returns a copy of in with f applied to each element; nil stays nil.
func mapSlice[T any](in []T, f func(T) T) []T {
	if in == nil {
		return nil
	}
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = f(v)
	}
	return out
}

// mapMap returns a copy of in with fk applied to keys and fv to values; nil
// stays nil.
func mapMap[T any](in map[string]T, fk func(string) string, fv func(T) T) map[string]T {
	if in == nil {
		return nil
	}
	out := make(map[string]T, len(in))
	for k, v := range in {
		out[fk(k)] = fv(v)
	}
	return out
}
