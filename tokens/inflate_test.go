package tokens

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func gzipBytes(t testing.TB, level int, parts ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, p := range parts { // one member per part
		w, err := gzip.NewWriterLevel(&b, level)
		if err != nil {
			t.Fatal(err)
		}
		w.Name = "body.json"
		w.Comment = "a comment"
		w.Extra = []byte("xx")
		w.Write(p)
		w.Close()
	}
	return b.Bytes()
}

func gunzipAll(parts [][]byte) ([]byte, bool) {
	var out []byte
	z := gunzip{out: func(b []byte) { out = append(out, b...) }}
	for _, p := range parts {
		z.write(p)
		if len(z.in) > inChunk+maxPending+16 || cap(z.ob) > outChunk {
			panic(fmt.Sprintf("buffers grew: in %d, out %d", len(z.in), cap(z.ob)))
		}
	}
	return out, z.state == gzHeader // every member ended well
}

func TestGunzipMatchesCompressGzip(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	random := make([]byte, 8_000)
	for i := range random {
		random[i] = byte(rng.IntN(256))
	}
	text := []byte(strings.Repeat("data: {\"usage\":{\"prompt_tokens\":19}}\r\n\r\n", 200))
	inputs := map[string][]byte{
		"empty": {}, "text": text, "random": random, "fixture": readFixture(t, "openai_chat_stream.sse"),
	}
	for name, in := range inputs {
		for _, level := range []int{gzip.NoCompression, gzip.BestSpeed, gzip.DefaultCompression, gzip.BestCompression, gzip.HuffmanOnly} {
			for _, members := range []int{1, 2} {
				parts := make([][]byte, members)
				for i := range parts {
					parts[i] = in
				}
				z := gzipBytes(t, level, parts...)
				want := bytes.Repeat(in, members)
				for _, cut := range []int{0, 1, 7, 1000} {
					if cut == 1 && len(z) > 4096 {
						continue // byte by byte only on small bodies: keeps -race fast
					}
					var chunks [][]byte
					if cut == 0 {
						chunks = [][]byte{z}
					} else {
						for b := z; len(b) > 0; {
							n := min(len(b), 1+rng.IntN(cut))
							chunks = append(chunks, b[:n])
							b = b[n:]
						}
					}
					got, ok := gunzipAll(chunks)
					if !ok || !bytes.Equal(got, want) {
						t.Errorf("%s level %d, %d members, slices up to %d: got %d bytes (ok %v), want %d", name, level, members, cut, len(got), ok, len(want))
					}
				}
			}
		}
	}
}

func TestGunzipFixture(t *testing.T) {
	got, ok := gunzipAll([][]byte{readFixture(t, "openai_chat.json.gz")})
	if !ok || !bytes.Equal(got, readFixture(t, "openai_chat.json")) {
		t.Errorf("openai_chat.json.gz did not decode to openai_chat.json")
	}
}

func TestGunzipCorrupt(t *testing.T) {
	good := gzipBytes(t, gzip.DefaultCompression, []byte(strings.Repeat("hello gateway ", 500)))
	for _, tc := range []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"not gzip", func([]byte) []byte { return []byte("{\"usage\":1}") }},
		{"bad checksum", func(b []byte) []byte { b[len(b)-6] ^= 0xff; return b }},
		{"bad length", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }},
		{"flipped data", func(b []byte) []byte { b[40] ^= 0x55; return b }},
		{"trailing garbage", func(b []byte) []byte { return append(b, "garbage!!!"...) }},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
	} {
		got, ok := gunzipAll([][]byte{tc.mut(bytes.Clone(good))})
		if ok {
			t.Errorf("%s: decoded %d bytes and reported success", tc.name, len(got))
		}
	}
}

func TestMeterGzipStreaming(t *testing.T) {
	// A gzip SSE stream far larger than any buffer, fed in small writes.
	event := "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n"
	last := "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}\n\n"
	z := gzipBytes(t, gzip.BestSpeed, []byte(strings.Repeat(event, 20_000)+last))
	m := NewMeter(WithContentType("text/event-stream"), WithContentEncoding("gzip"))
	for b := z; len(b) > 0; {
		n := min(len(b), 1500)
		m.Write(b[:n])
		b = b[n:]
	}
	if u, ok := m.Usage(); !ok || u.Total != 12 {
		t.Errorf("gzip SSE: got %+v, %v", u, ok)
	}
}

// FuzzGunzip checks the push-style gzip decoder against compress/gzip: no
// panic, bounded buffers, the same bytes however the input is sliced, and
// never bytes that compress/gzip would not produce.
func FuzzGunzip(f *testing.F) {
	f.Add(readFixture(f, "openai_chat.json.gz"), uint64(1))
	f.Add(gzipBytes(f, gzip.HuffmanOnly, []byte("aaaaabbbbbcccc")), uint64(2))
	f.Add(gzipBytes(f, gzip.NoCompression, []byte("stored block")), uint64(3))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64) {
		whole, okWhole := gunzipAll([][]byte{data})
		split, okSplit := gunzipAll(chunks(data, seed))
		if !bytes.Equal(whole, split) || okWhole != okSplit {
			t.Fatalf("whole gives %d bytes (%v), slices %d bytes (%v)", len(whole), okWhole, len(split), okSplit)
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		var want bytes.Buffer
		_, err = want.ReadFrom(zr)
		if err == nil && okWhole && !bytes.Equal(whole, want.Bytes()) {
			t.Fatalf("decoded %d bytes, compress/gzip %d", len(whole), want.Len())
		}
	})
}

// BenchmarkGunzip measures the push-style decoder on a gzip SSE stream;
// SetBytes counts decompressed bytes.
func BenchmarkGunzip(b *testing.B) {
	corpus, _ := streamCorpus(b, 1<<20)
	z := gzipBytes(b, gzip.DefaultCompression, corpus)
	b.SetBytes(int64(len(corpus)))
	b.ReportAllocs()
	for b.Loop() {
		g := gunzip{out: func([]byte) {}}
		for p := z; len(p) > 0; {
			n := min(len(p), 32<<10)
			g.write(p[:n])
			p = p[n:]
		}
	}
}
