package approach2

import (
	"fmt"
	"reflect"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// The proto messages mirror the Go types of package backends field for
// field: a proto field's name is the Go field's JSON name, and embedded
// structs (Scope, Page, Truncation) are flattened. These functions copy
// between the two by name, so that adding a field means adding it to both
// the Go type and the .proto, and TestEveryFieldCrossesTheWire fails when
// one side is forgotten.

// toProto copies the Go struct src (or pointer to one) into m.
func toProto(src any, m protoreflect.Message) error {
	return copyToProto(reflect.Indirect(reflect.ValueOf(src)), m)
}

// fromProto copies m into the Go struct pointed to by dst.
func fromProto(m protoreflect.Message, dst any) error {
	return copyFromProto(m, reflect.ValueOf(dst).Elem())
}

func copyToProto(v reflect.Value, m protoreflect.Message) error {
	fields := goFields(v.Type())
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		idx, ok := fields[string(fd.Name())]
		if !ok {
			return fmt.Errorf("approach2: %s has no Go field %q in %s", fd.FullName(), fd.Name(), v.Type())
		}
		fv := v.FieldByIndex(idx)
		if err := validText(fv, fd); err != nil {
			return err
		}
		if fd.IsList() {
			if err := listToProto(fv, m.Mutable(fd).List(), fd); err != nil {
				return err
			}
			continue
		}
		if !fv.IsZero() {
			m.Set(fd, scalarToProto(fv))
		}
	}
	return nil
}

// invalidUTF8 is the error of a Go string that a proto string field cannot
// carry (proto3 strings are UTF-8).
type invalidUTF8 struct{ field string }

func (e *invalidUTF8) Error() string { return e.field + " is not valid UTF-8" }

// validText refuses a string, or list of strings, that is not UTF-8.
func validText(fv reflect.Value, fd protoreflect.FieldDescriptor) error {
	if fd.Kind() != protoreflect.StringKind {
		return nil
	}
	if fd.IsList() {
		for j := range fv.Len() {
			if !utf8.ValidString(fv.Index(j).String()) {
				return &invalidUTF8{field: string(fd.Name())}
			}
		}
		return nil
	}
	if !utf8.ValidString(fv.String()) {
		return &invalidUTF8{field: string(fd.Name())}
	}
	return nil
}

func listToProto(fv reflect.Value, list protoreflect.List, fd protoreflect.FieldDescriptor) error {
	for j := range fv.Len() {
		el := fv.Index(j)
		if fd.Kind() != protoreflect.MessageKind {
			list.Append(scalarToProto(el))
			continue
		}
		nm := list.NewElement().Message()
		if err := copyToProto(el, nm); err != nil {
			return err
		}
		list.Append(protoreflect.ValueOfMessage(nm))
	}
	return nil
}

func scalarToProto(v reflect.Value) protoreflect.Value {
	switch v.Kind() {
	case reflect.String:
		return protoreflect.ValueOfString(v.String())
	case reflect.Bool:
		return protoreflect.ValueOfBool(v.Bool())
	case reflect.Int, reflect.Int64, reflect.Int32:
		return protoreflect.ValueOfInt64(v.Int())
	}
	panic(fmt.Sprintf("approach2: unsupported Go kind %s", v.Kind()))
}

func copyFromProto(m protoreflect.Message, v reflect.Value) error {
	fields := goFields(v.Type())
	fds := m.Descriptor().Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		idx, ok := fields[string(fd.Name())]
		if !ok {
			return fmt.Errorf("approach2: %s has no Go field %q in %s", fd.FullName(), fd.Name(), v.Type())
		}
		fv := v.FieldByIndex(idx)
		if fd.IsList() {
			if err := listFromProto(m.Get(fd).List(), fv, fd); err != nil {
				return err
			}
			continue
		}
		scalarFromProto(m.Get(fd), fv)
	}
	return nil
}

// listFromProto always makes a non-nil slice: results carry empty lists as
// [], the way Approach 1 returns them.
func listFromProto(list protoreflect.List, fv reflect.Value, fd protoreflect.FieldDescriptor) error {
	s := reflect.MakeSlice(fv.Type(), list.Len(), list.Len())
	for j := range list.Len() {
		if fd.Kind() != protoreflect.MessageKind {
			scalarFromProto(list.Get(j), s.Index(j))
			continue
		}
		if err := copyFromProto(list.Get(j).Message(), s.Index(j)); err != nil {
			return err
		}
	}
	fv.Set(s)
	return nil
}

func scalarFromProto(pv protoreflect.Value, fv reflect.Value) {
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(pv.String())
	case reflect.Bool:
		fv.SetBool(pv.Bool())
	case reflect.Int, reflect.Int64, reflect.Int32:
		fv.SetInt(pv.Int())
	default:
		panic(fmt.Sprintf("approach2: unsupported Go kind %s", fv.Kind()))
	}
}

// goFields maps the JSON names of t's exported fields, embedded structs
// flattened, to their index paths. Fields without a JSON name (json:"-")
// are not part of the operation messages, and neither is the idempotency
// key, which travels in the OperationRequest envelope.
func goFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && f.Type.Kind() == reflect.Struct && name == "" {
			for n, idx := range goFields(f.Type) {
				out[n] = append([]int{i}, idx...)
			}
			continue
		}
		if name == "-" || name == "" || name == "idempotency_key" {
			continue
		}
		out[name] = []int{i}
	}
	return out
}
