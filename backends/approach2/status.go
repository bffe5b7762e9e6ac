package approach2

import (
	"errors"
	"strconv"

	"github.com/gitgate/gitgate/backends"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errorDomain is the ErrorInfo domain of gitgate's errors.
const errorDomain = "gitgate.dev"

// The gRPC code for each category. Categories that share a code
// (rate_limited and resource_exhausted) are told apart by the ErrorInfo
// reason, so the mapping loses nothing.
var categoryCodes = map[backends.Category]codes.Code{
	backends.InvalidArgument:   codes.InvalidArgument,
	backends.Forbidden:         codes.PermissionDenied,
	backends.Unauthenticated:   codes.Unauthenticated,
	backends.NotFound:          codes.NotFound,
	backends.Conflict:          codes.FailedPrecondition,
	backends.RateLimited:       codes.ResourceExhausted,
	backends.ResourceExhausted: codes.ResourceExhausted,
	backends.Unavailable:       codes.Unavailable,
	backends.Timeout:           codes.DeadlineExceeded,
	backends.Canceled:          codes.Canceled,
	backends.Internal:          codes.Internal,
}

// codeCategories maps codes back when a status carries no ErrorInfo (it
// came from gRPC itself, not from the service).
var codeCategories = map[codes.Code]backends.Category{
	codes.InvalidArgument: backends.InvalidArgument, codes.OutOfRange: backends.InvalidArgument,
	codes.PermissionDenied: backends.Forbidden, codes.Unauthenticated: backends.Unauthenticated,
	codes.NotFound: backends.NotFound, codes.FailedPrecondition: backends.Conflict,
	codes.AlreadyExists: backends.Conflict, codes.Aborted: backends.Conflict,
	codes.ResourceExhausted: backends.ResourceExhausted, codes.Unavailable: backends.Unavailable,
	codes.Canceled: backends.Canceled, codes.DeadlineExceeded: backends.Timeout,
}

// toStatus turns an operation's error into a gRPC status carrying its
// category and whether the operation started.
func toStatus(err error, started bool) error {
	cat := backends.CategoryOf(err)
	code, ok := categoryCodes[cat]
	if !ok {
		cat, code = backends.Internal, codes.Internal
	}
	st := status.New(code, backends.MessageOf(err))
	info := &errdetails.ErrorInfo{Reason: string(cat), Domain: errorDomain,
		Metadata: map[string]string{"started": strconv.FormatBool(started)}}
	if with, derr := st.WithDetails(info); derr == nil {
		st = with
	}
	return st.Err()
}

// fromStatus turns a gRPC error into a categorised error. started reports
// whether the service said it started the operation; a status without
// ErrorInfo (from gRPC itself) reports false only where gRPC guarantees the
// call never reached the service — the caller decides that (see Client).
func fromStatus(err error) (e *backends.Error, started, known bool) {
	st, ok := status.FromError(err)
	if !ok {
		return &backends.Error{Category: backends.Internal, Message: "approach2: " + err.Error(), Err: err}, false, false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == errorDomain {
			return &backends.Error{Category: backends.Category(info.Reason), Message: st.Message()}, info.Metadata["started"] == "true", true
		}
	}
	cat, ok := codeCategories[st.Code()]
	if !ok {
		cat = backends.Internal
	}
	return &backends.Error{Category: cat, Message: "approach2: " + st.Message(), Err: errors.Unwrap(err)}, false, false
}
