package policy

import (
	"errors"
	"testing"
	"time"
)

func TestParseRateCanonical(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Rate
	}{
		{"50/m", Rate{50, time.Minute}},
		{"10000/h", Rate{10000, time.Hour}},
		{"1/s", Rate{1, time.Second}},
		{"100/d", Rate{100, 24 * time.Hour}},
		{"100/5m", Rate{100, 5 * time.Minute}},
		{"5/250ms", Rate{5, 250 * time.Millisecond}},
		{"100/90s", Rate{100, 90 * time.Second}},
		{"0/m", Rate{0, time.Minute}},
		{"9007199254740992/s", Rate{1 << 53, time.Second}},
		{"1/366d", Rate{1, 366 * 24 * time.Hour}},
	} {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if s := got.String(); s != tc.in {
			t.Errorf("ParseRate(%q).String() = %q; want it back", tc.in, s)
		}
	}
}

func TestParseRateRejects(t *testing.T) {
	for _, tc := range []struct {
		in, suggestion, message string
	}{
		{"60/hour", "60/h", `"60/hour" is not a rate`},
		{"60 per hour", "60/h", "is not a rate"},
		{"60/Hour", "60/h", "is not a rate"},
		{"60rpm", "60/m", "is not a rate"},
		{"1,000/min", "1000/m", "is not a rate"},
		{"100/5 minutes", "100/5m", "is not a rate"},
		{"60/week", "60/7d", "is not a rate"},
		{"100/1m", "100/m", "canonical form"},
		{"100/60s", "100/m", "canonical form"},
		{"1000/1000ms", "1000/s", "canonical form"},
		{"050/m", "50/m", "canonical form"},
		{"100/0m", "", "window of 0"},
		{"-5/m", "", "negative limit"},
		{"0.5/s", "", "fractional limit"},
		{"9007199254740993/s", "", "over the largest, 2^53"},
		{"99999999999999999999999/s", "", "over the largest, 2^53"},
		{"1/367d", "", "over 366d"},
		{"fast", "", "is not a rate: write"},
		{"60/fortnight", "", "is not a rate: write"},
		{"", "", "is not a rate"},
		{"50/ m", "50/m", "is not a rate"},
	} {
		_, err := ParseRate(tc.in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("ParseRate(%q) = %v; want an *Error", tc.in, err)
			continue
		}
		if e.Suggestion != tc.suggestion || !contains(e.Message, tc.message) {
			t.Errorf("ParseRate(%q): message %q, suggestion %q; want message with %q, suggestion %q", tc.in, e.Message, e.Suggestion, tc.message, tc.suggestion)
		}
	}
}
