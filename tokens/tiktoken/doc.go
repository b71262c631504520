// Package tiktoken is an exact tokens.Estimator for OpenAI's o200k_base and
// cl100k_base BPE encodings, built on github.com/pkoukk/tiktoken-go with the
// BPE ranks embedded by github.com/pkoukk/tiktoken-go-loader.
//
// It never downloads anything: the ranks are compiled into the binary
// (about 7 MB, all four encodings of the loader), and the package does not
// touch tiktoken-go's process-wide loader setting. Building an encoding
// costs 150-400 ms and 11-23 MiB, so build a Counter once at startup and
// share it; it is safe for concurrent use. Text that contains special-token
// strings such as "<|endoftext|>" is counted as ordinary text and never
// panics.
//
// Counting runs at about 3 MB/s, so a 100 KB prompt costs about 30 ms of
// CPU. WithSampleBytes bounds that cost: only the first n bytes are encoded
// and the count is extrapolated to the whole text.
//
//	c, err := tiktoken.New(tiktoken.O200kBase)
//	if err != nil { ... }
//	r, err := tokens.EstimateRequest(path, body, c)
//
// Counts are exact only for OpenAI models; Claude and Gemini use other
// tokenizers.
package tiktoken
