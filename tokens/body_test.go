package tokens

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

func TestReadBody(t *testing.T) {
	body := readFixture(t, "openai_chat_request.json")
	for _, tc := range []struct {
		name          string
		limit         int64
		contentLength int64
		reject        bool
		wantComplete  bool
		wantErr       error
		wantLength    int64
	}{
		{"under limit", 1 << 20, int64(len(body)), false, true, nil, int64(len(body))},
		{"exactly the limit", int64(len(body)), -1, false, true, nil, int64(len(body))},
		{"over limit, estimate", 100, int64(len(body)), false, false, nil, int64(len(body))},
		{"over limit, unknown length", 100, -1, false, false, nil, -1},
		{"over limit, reject", 100, -1, true, false, ErrBodyTooLarge, -1},
		{"declared over limit, reject", 100, int64(len(body)), true, false, ErrBodyTooLarge, int64(len(body))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &closeCounter{Reader: iotest.HalfReader(bytes.NewReader(body))}
			opts := []BodyOption{WithBodyLimit(tc.limit)}
			if tc.reject {
				opts = append(opts, WithRejectOverLimit())
			}
			b, replay, err := ReadBody(src, tc.contentLength, "/v1/chat/completions", opts...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if b.Complete != tc.wantComplete || b.Length != tc.wantLength {
				t.Errorf("Complete, Length = %v, %d; want %v, %d", b.Complete, b.Length, tc.wantComplete, tc.wantLength)
			}
			if int64(len(b.Prefix)) > tc.limit || !bytes.HasPrefix(body, b.Prefix) {
				t.Errorf("prefix of %d bytes is not a prefix of the body within the limit", len(b.Prefix))
			}
			got, err := io.ReadAll(replay)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("replay gave %d bytes (err %v), want the %d-byte body byte for byte", len(got), err, len(body))
			}
			replay.Close()
			if src.closed != 1 {
				t.Errorf("source closed %d times, want 1", src.closed)
			}
			if err != nil {
				return
			}
			r, err := b.Estimate(nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Model != "gpt-4o-mini" && tc.wantComplete {
				t.Errorf("model = %q", r.Model)
			}
			if !tc.wantComplete {
				n := max(tc.wantLength, int64(len(b.Prefix)))
				if !r.FromLength || r.Input != EstimateFromLength(n) {
					t.Errorf("over the limit: Input %d FromLength %v, want %d from length", r.Input, r.FromLength, EstimateFromLength(n))
				}
			}
		})
	}
}

func TestReadBodyPrefixMembers(t *testing.T) {
	body := `{"model":"gpt-4o","stream":true,"max_tokens":512,"messages":[{"role":"user","content":"` + strings.Repeat("x", 5000) + `"}]}`
	b, _, err := ReadBody(io.NopCloser(strings.NewReader(body)), -1, "", WithBodyLimit(1024))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := b.Estimate(nil)
	if r.Model != "gpt-4o" || !r.Stream || r.MaxOutput != 512 || !r.FromLength || r.Input != 256 {
		t.Errorf("Estimate of a truncated body = %+v", r)
	}
	// A member cut by the limit is not used.
	b, _, _ = ReadBody(io.NopCloser(strings.NewReader(`{"max_tokens":1024, "model":"x"}`)), -1, "", WithBodyLimit(17))
	if r, _ := b.Estimate(nil); r.MaxOutput != 0 {
		t.Errorf("a cut member gave MaxOutput %d", r.MaxOutput)
	}
}

func TestReadBodyReadError(t *testing.T) {
	boom := errors.New("boom")
	src := io.NopCloser(io.MultiReader(strings.NewReader("abc"), iotest.ErrReader(boom)))
	b, replay, err := ReadBody(src, -1, "")
	if !errors.Is(err, boom) {
		t.Fatalf("error = %v, want boom", err)
	}
	got, rerr := io.ReadAll(replay)
	if string(got) != "abc" || !errors.Is(rerr, boom) || string(b.Prefix) != "abc" {
		t.Errorf("replay = %q, %v; prefix %q", got, rerr, b.Prefix)
	}
}

func TestReadBodyMemoryBound(t *testing.T) {
	const limit = 10_000
	src := io.NopCloser(iotest.OneByteReader(strings.NewReader(strings.Repeat("x", 50_000))))
	b, replay, err := ReadBody(src, 1<<60, "", WithBodyLimit(limit))
	if err != nil {
		t.Fatal(err)
	}
	if cap(b.Prefix) > limit+1 || len(b.Prefix) != limit || b.Complete {
		t.Errorf("prefix len %d cap %d complete %v; want len %d, cap <= %d", len(b.Prefix), cap(b.Prefix), b.Complete, limit, limit+1)
	}
	if n, _ := io.Copy(io.Discard, replay); n != 50_000 {
		t.Errorf("replay gave %d bytes, want 50000", n)
	}
}
