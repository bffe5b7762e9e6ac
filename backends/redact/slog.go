package redact

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Handler wraps next so that every record it receives is redacted first: the
// message, every attribute key and value (including attributes added with
// WithAttrs), and group names. Values are handled by kind: strings are
// redacted; groups recursively; errors are replaced by Redactor.Error of
// them; fmt.Stringers by their redacted String(); LogValuers are resolved
// first. Any other value is formatted with fmt.Sprint (and, for
// slog.KindAny, also JSON-encoded, as slog.JSONHandler would) and replaced by
// its redacted text only if that text contained a secret.
func (r *Redactor) Handler(next slog.Handler) slog.Handler {
	return &handler{r: r, next: next}
}

type handler struct {
	r    *Redactor
	next slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &handler{r: h.r, next: h.next.WithAttrs(h.attrs(attrs))}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, next: h.next.WithGroup(h.r.String(name))}
}

func (h *handler) attrs(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.attr(a)
	}
	return out
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	return slog.Attr{Key: h.r.String(a.Key), Value: h.value(a.Value)}
}

func (h *handler) value(v slog.Value) slog.Value {
	v = v.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.StringValue(h.r.String(v.String()))
	case slog.KindGroup:
		return slog.GroupValue(h.attrs(v.Group())...)
	case slog.KindAny:
		return h.anyValue(v)
	default:
		return h.ifSecret(v, fmt.Sprint(v.Any()))
	}
}

func (h *handler) anyValue(v slog.Value) slog.Value {
	switch x := v.Any().(type) {
	case error:
		return slog.AnyValue(h.r.Error(x))
	case fmt.Stringer:
		return slog.StringValue(h.r.String(fmt.Sprint(x))) // Sprint survives nil receivers
	}
	if out := h.ifSecret(v, fmt.Sprint(v.Any())); out.Kind() == slog.KindString {
		return out
	}
	js, err := json.Marshal(v.Any())
	if err != nil {
		return v
	}
	return h.ifSecret(v, string(js))
}

// ifSecret returns the redacted text as a string value if text contains
// something to mask, and v unchanged otherwise.
func (h *handler) ifSecret(v slog.Value, text string) slog.Value {
	if red := h.r.String(text); red != text {
		return slog.StringValue(red)
	}
	return v
}
