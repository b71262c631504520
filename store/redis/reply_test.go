package redis

import (
	"errors"
	"testing"

	"github.com/tollgate-go/tollgate/algorithms"
)

func TestParseReply(t *testing.T) {
	res := make([]algorithms.Result, 2)
	admitted, err := parseReply([]byte("1 1 0 5 0 100 0 1 2 9223372036854775807 9223372036854775807"), res)
	if err != nil || !admitted {
		t.Fatalf("valid reply: %v %v", admitted, err)
	}
	want := []algorithms.Result{
		{Allowed: true, Remaining: 5, ResetAfter: 100},
		{Reason: algorithms.ReasonLimited, Remaining: 2, RetryAfter: 1<<63 - 1, ResetAfter: 1<<63 - 1},
	}
	for i := range want {
		if res[i] != want[i] {
			t.Fatalf("result %d: got %+v, want %+v", i, res[i], want[i])
		}
	}
	for _, bad := range []string{
		"", "2", "1", "1 1 0 5 0", "1 1 0 5 0 100 0 1 2 7", "1 1 0 5 0 100 0 1 2 7 8 9",
		"1 1 0 5 0 100 0 1 2 7 9223372036854775808", "1 1 0 -5 0 100 0 1 2 7 8",
		"1 1 2 5 0 100 0 1 2 7 8", "1 1 0 5 0 100 0 3 2 7 8", "1 1 0 5 0 100 0 0 2 7 8",
		"1 1 0 5 0 1e2 0 1 2 7 8", "1  1 0 5 0 100 0 1 2 7 8", "1 1 0 5 0 100 0 1 2 7 8 ",
		"1 1 0 5 0 99999999999999999999 0 1 2 7 8", "x", "-",
	} {
		if _, err := parseReply([]byte(bad), res); !errors.Is(err, ErrReply) {
			t.Errorf("parseReply(%q): %v, want ErrReply", bad, err)
		}
	}
}

func TestParseState(t *testing.T) {
	if st, err := parseState("1 -2 9223372036854775807"); err != nil || st != (algorithms.State{1, -2, 1<<63 - 1}) {
		t.Fatalf("parseState: %v %v", st, err)
	}
	for _, bad := range []string{"1", "1 2", "1 2 3 4", "a b c", "1 2 3 ", "1.0 2 3", "-9223372036854775809 0 0"} {
		if _, err := parseState(bad); !errors.Is(err, ErrReply) {
			t.Errorf("parseState(%q): %v, want ErrReply", bad, err)
		}
	}
}

func FuzzParseReply(f *testing.F) {
	f.Add([]byte("1 1 0 5 0 100"))
	f.Add([]byte("0 0 2 0 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		res := make([]algorithms.Result, 1)
		_, _ = parseReply(b, res)
		_, _ = parseState(string(b))
	})
}

func TestKeySlot(t *testing.T) {
	// Values from the Redis documentation of CLUSTER KEYSLOT.
	for key, want := range map[string]int{"somekey": 11058, "foo{hash_tag}": 2515, "bar{hash_tag}": 2515, "hash_tag": 2515} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	// An empty tag or an unclosed brace hashes the whole key.
	for _, k := range []string{"{}a", "a{b", "}{"} {
		if keySlot(k) != keySlot([]byte(k)) {
			t.Errorf("keySlot(%q): string and bytes differ", k)
		}
	}
	if keySlot("{}x") == keySlot("x") {
		t.Error("keySlot(\"{}x\") hashed the empty tag")
	}
}
