package hostiletest

import (
	"bytes"
	"context"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/httplimit"
	"github.com/tollgate-go/tollgate/store/memory"
	"github.com/tollgate-go/tollgate/tokens"
)

// jsonBody produces a chat completion request of exactly size bytes on
// the fly: a valid JSON prefix, one user message of filler, and the
// closing suffix. It never holds more than its 64 KiB filler, and hashes
// every byte it hands out.
type jsonBody struct {
	size, off int64
	prefix    []byte
	suffix    []byte
	filler    []byte
	sum       hash.Hash32
}

func newJSONBody(size int64) *jsonBody {
	b := &jsonBody{
		size:   size,
		prefix: []byte(`{"model":"gpt-4o","max_tokens":64,"stream":false,"messages":[{"role":"user","content":"`),
		suffix: []byte(`"}]}`),
		sum:    crc32.NewIEEE(),
	}
	const phrase = "lorem ipsum dolor sit amet, consectetur adipiscing elit. "
	b.filler = bytes.Repeat([]byte(phrase), 64*kib/len(phrase))
	if size < int64(len(b.prefix)+len(b.suffix)) {
		panic("body too small")
	}
	return b
}

func (b *jsonBody) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && b.off < b.size {
		var src []byte
		tail := b.size - int64(len(b.suffix))
		switch {
		case b.off < int64(len(b.prefix)):
			src = b.prefix[b.off:]
		case b.off >= tail:
			src = b.suffix[b.off-tail:]
		default:
			pos := (b.off - int64(len(b.prefix))) % int64(len(b.filler))
			src = b.filler[pos:]
			if rest := tail - b.off; int64(len(src)) > rest {
				src = src[:rest]
			}
		}
		c := copy(p[n:], src)
		b.sum.Write(p[n : n+c])
		n += c
		b.off += int64(c)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// upstream counts and hashes the body it receives and samples the heap
// every sampleEvery bytes, then answers a chat completion with usage.
type upstream struct {
	sampleEvery int64

	mu                 sync.Mutex
	n                  int64
	sum                uint32
	err                error
	samples            int
	maxAlloc, maxInuse uint64
	contentLength      int64
	transferEncoding   []string
	elapsed            time.Duration
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h := crc32.NewIEEE()
	buf := make([]byte, 32*kib)
	var n int64
	next := u.sampleEvery
	var ms runtime.MemStats
	var maxAlloc, maxInuse uint64
	samples := 0
	var err error
	for {
		k, rerr := r.Body.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if n >= next {
			runtime.ReadMemStats(&ms)
			maxAlloc, maxInuse = max(maxAlloc, ms.HeapAlloc), max(maxInuse, ms.HeapInuse)
			samples++
			next += u.sampleEvery
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	u.mu.Lock()
	u.n, u.sum, u.err = n, h.Sum32(), err
	u.samples, u.maxAlloc, u.maxInuse = samples, maxAlloc, maxInuse
	u.contentLength, u.transferEncoding = r.ContentLength, r.TransferEncoding
	u.elapsed = time.Since(start)
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`)
}

// hugeBodySize is the size of the huge bodies: 1 GiB with TOLLGATE_LONG=1,
// else 256 MiB.
func hugeBodySize() int64 {
	if long() {
		return 1 * gib
	}
	return 256 * mib
}

// TestHugeBodies sends huge chat completion bodies through httplimit in
// LLM mode, over a real HTTP server on 127.0.0.1: with a Content-Length
// and chunked without one, with the default read cap and a larger one.
// The upstream handler receives every byte (count and CRC-32 equal the
// generator's), the request is estimated, admitted and settled, and the
// heap sampled during the transfer stays within the read cap plus 16 MiB
// over the heap before the request.
func TestHugeBodies(t *testing.T) {
	size := hugeBodySize()
	cases := []struct {
		name    string
		chunked bool
		limit   int64 // 0: the default, tokens.DefaultBodyLimit
	}{
		{"content-length/default-cap", false, 0},
		{"chunked/default-cap", true, 0},
		{"content-length/8MiB-cap", false, 8 * mib},
		{"chunked/8MiB-cap", true, 8 * mib},
		{"content-length/32MiB-cap", false, 32 * mib},
		{"chunked/32MiB-cap", true, 32 * mib},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			readCap := int64(tokens.DefaultBodyLimit)
			opts := []httplimit.Option{httplimit.WithLLM()}
			if tc.limit > 0 {
				readCap = tc.limit
				opts = append(opts, httplimit.WithBodyLimit(tc.limit))
			}
			var (
				chargeMu sync.Mutex
				charges  []httplimit.Charge
			)
			opts = append(opts, httplimit.WithChargeHook(func(_ context.Context, _ *http.Request, c httplimit.Charge) {
				chargeMu.Lock()
				charges = append(charges, c)
				chargeMu.Unlock()
			}))
			s := memory.New()
			defer s.Close()
			l, err := limiter.New(s, []limiter.Rule{
				{Name: "per-ip", Limit: 100, Period: time.Minute, By: []dimensions.Dimension{dimensions.ClientIP}},
				{Name: "tpm", Unit: limiter.Tokens, Limit: algorithms.MaxLimit, Period: time.Minute, By: []dimensions.Dimension{dimensions.ClientIP}},
			})
			if err != nil {
				t.Fatal(err)
			}
			up := &upstream{sampleEvery: 8 * mib}
			srv := httptest.NewServer(httplimit.New(l, opts...).Handler(up))
			defer srv.Close()
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}

			body := newJSONBody(size)
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.ContentLength = size
			if tc.chunked {
				req.ContentLength = -1 // Transfer-Encoding: chunked
			}

			settle()
			baseAlloc, baseInuse := heapAfterGC()
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			respBody, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			elapsed := time.Since(start)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d (%s), want 200", resp.StatusCode, respBody)
			}

			up.mu.Lock()
			defer up.mu.Unlock()
			t.Logf("%s: %d MiB in %v (%.0f MiB/s); upstream saw Content-Length %d, Transfer-Encoding %v",
				tc.name, size/mib, elapsed.Round(time.Millisecond), float64(size)/mib/elapsed.Seconds(), up.contentLength, up.transferEncoding)
			t.Logf("heap: before %.1f MiB alloc / %.1f MiB in use; peak during transfer %.1f MiB alloc / %.1f MiB in use (%d samples); read cap %d MiB; VmHWM %.1f MiB",
				mb(baseAlloc), mb(baseInuse), mb(up.maxAlloc), mb(up.maxInuse), up.samples, readCap/mib, mbi(procStatus("VmHWM")))
			if up.err != nil {
				t.Errorf("upstream read error: %v", up.err)
			}
			if up.n != size || up.sum != body.sum.Sum32() {
				t.Errorf("upstream received %d bytes, CRC-32 %08x; sent %d bytes, CRC-32 %08x", up.n, up.sum, body.off, body.sum.Sum32())
			}
			if tc.chunked == (up.contentLength >= 0) {
				t.Errorf("upstream saw Content-Length %d; want %s", up.contentLength, map[bool]string{true: "-1 (chunked)", false: strconv.FormatInt(size, 10)}[tc.chunked])
			}
			if up.samples < int(size/up.sampleEvery)-1 {
				t.Errorf("%d heap samples, want %d", up.samples, size/up.sampleEvery)
			}
			chargeMu.Lock()
			defer chargeMu.Unlock()
			if len(charges) != 1 {
				t.Fatalf("%d settlements, want 1", len(charges))
			}
			c := charges[0]
			t.Logf("estimate: %d input + %d output tokens (model %q); charged %+v, outcome %v",
				c.Estimate.InputTokens, c.Estimate.OutputTokens, c.Model, c.Charged, c.Outcome)
			if c.Outcome != httplimit.Settled || c.Charged.InputTokens != 7 || c.Charged.OutputTokens != 3 {
				t.Errorf("charge %+v, want Settled with 7 input and 3 output tokens", c)
			}
			if c.Model != "gpt-4o" || c.Estimate.OutputTokens != 64 {
				t.Errorf("estimate: model %q, output %d; want gpt-4o and 64 (from the prefix)", c.Model, c.Estimate.OutputTokens)
			}
			// A body with a length is estimated from it; a chunked one
			// can only be estimated from what the cap let through.
			want := tokens.EstimateFromLength(size)
			if tc.chunked {
				want = tokens.EstimateFromLength(readCap)
			}
			if c.Estimate.InputTokens < want {
				t.Errorf("estimated %d input tokens, want >= %d", c.Estimate.InputTokens, want)
			}

			// The heap bound: the read cap plus a small constant, for a
			// body of any length, declared or not.
			bound := uint64(readCap + 16*mib)
			dAlloc := up.maxAlloc - min(up.maxAlloc, baseAlloc)
			dInuse := up.maxInuse - min(up.maxInuse, baseInuse)
			t.Logf("heap growth during the transfer: %.1f MiB alloc, %.1f MiB in use; bound read cap + 16 MiB = %d MiB", mb(dAlloc), mb(dInuse), bound/mib)
			if dAlloc > bound {
				t.Errorf("HeapAlloc grew by %.1f MiB during the transfer, want < read cap + 16 MiB = %d MiB", mb(dAlloc), bound/mib)
			}
			if dInuse > bound {
				t.Errorf("HeapInuse grew by %.1f MiB during the transfer, want < read cap + 16 MiB = %d MiB", mb(dInuse), bound/mib)
			}
		})
	}
}
