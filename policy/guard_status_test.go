package policy

import "testing"

func TestGuardErrorStatusCode(t *testing.T) {
	cases := []struct {
		reason error
		want   int
	}{
		{ErrModelNotAllowed, 403},
		{ErrModelDenied, 403},
		{ErrInputTokensOverCap, 400},
		{ErrOutputTokensOverCap, 400},
	}
	for _, c := range cases {
		if got := (&GuardError{Rule: "r", Reason: c.reason}).StatusCode(); got != c.want {
			t.Errorf("%v: StatusCode() = %d, want %d", c.reason, got, c.want)
		}
	}
}
