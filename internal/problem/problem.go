// Package problem is glow's error model: RFC 9457 problem documents, the same object over
// HTTP (application/problem+json) and in socket.io acks. Handlers return these to tell the
// caller what went wrong; any other error becomes a plain 500.
package problem

import (
	"fmt"
	"net/http"
)

// Detail locates one problem in a request.
type Detail struct {
	Message  string `json:"message,omitempty"`
	Location string `json:"location,omitempty"` // e.g. "body.personas[0].name"
	Value    any    `json:"value,omitempty"`
}

// Problem is an RFC 9457 problem document. It is also an error.
type Problem struct {
	Type     string   `json:"type,omitempty"`
	Title    string   `json:"title"`
	Status   int      `json:"status"`
	Detail   string   `json:"detail,omitempty"`
	Instance string   `json:"instance,omitempty"`
	Errors   []Detail `json:"errors,omitempty"`
	// RetryAfter is, with 429, the seconds to wait before trying again.
	RetryAfter int `json:"retry_after,omitempty"`
}

func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Title
	}
	return p.Title + ": " + p.Detail
}

// New returns a problem with the status's standard title.
func New(status int, detail string, errs ...Detail) *Problem {
	return &Problem{Title: http.StatusText(status), Status: status, Detail: detail, Errors: errs}
}

// BadRequest (400): the request cannot be read.
func BadRequest(detail string, errs ...Detail) *Problem {
	return New(http.StatusBadRequest, detail, errs...)
}

// Unauthorized (401): no usable token.
func Unauthorized(detail string) *Problem { return New(http.StatusUnauthorized, detail) }

// Forbidden (403): the caller may not do this.
func Forbidden(format string, args ...any) *Problem {
	return New(http.StatusForbidden, fmt.Sprintf(format, args...))
}

// NotFound (404): a referenced record does not exist.
func NotFound(format string, args ...any) *Problem {
	return New(http.StatusNotFound, fmt.Sprintf(format, args...))
}

// TooManyRequests (429): the caller has too much going on; it may try again after
// retryAfter seconds.
func TooManyRequests(retryAfter int, format string, args ...any) *Problem {
	p := New(http.StatusTooManyRequests, fmt.Sprintf(format, args...))
	p.RetryAfter = retryAfter
	return p
}

// Conflict (409): the request clashes with the state of the server.
func Conflict(format string, args ...any) *Problem {
	return New(http.StatusConflict, fmt.Sprintf(format, args...))
}

// Invalid (422): the request is well-formed but its content is not acceptable.
func Invalid(detail string, errs ...Detail) *Problem {
	return New(http.StatusUnprocessableEntity, detail, errs...)
}
