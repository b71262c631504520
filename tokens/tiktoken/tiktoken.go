package tiktoken

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	tk "github.com/pkoukk/tiktoken-go"
	loader "github.com/pkoukk/tiktoken-go-loader"

	"github.com/tollgate-go/tollgate/tokens"
)

// Encoding names.
const (
	O200kBase  = "o200k_base"  // GPT-4o, GPT-4.1, GPT-5, o-series
	Cl100kBase = "cl100k_base" // GPT-4, GPT-3.5, text-embedding-3
)

// ErrUnknownEncoding means an encoding name is neither O200kBase nor
// Cl100kBase.
var ErrUnknownEncoding = errors.New("tiktoken: unknown encoding")

// Option configures a Counter.
type Option func(*Counter)

// WithSampleBytes makes CountTokens encode at most n bytes of a text (cut at
// a rune boundary) and extrapolate the count to the whole text by length.
// n <= 0 (the default) encodes every byte.
func WithSampleBytes(n int) Option { return func(c *Counter) { c.sample = n } }

// Counter counts tokens exactly with one BPE encoding. It implements
// tokens.Estimator and is safe for concurrent use. Build it with New.
type Counter struct {
	name   string
	enc    *tk.Tiktoken
	sample int
}

var _ tokens.Estimator = (*Counter)(nil)

// New builds the named encoding (O200kBase or Cl100kBase) from the ranks
// embedded in the binary. It is expensive (see the package documentation):
// call it once and reuse the Counter.
func New(encoding string, opts ...Option) (*Counter, error) {
	var special map[string]int
	var pattern string
	switch encoding {
	case O200kBase:
		special = map[string]int{"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
		pattern = strings.Join([]string{
			`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
			`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?`,
			`\p{N}{1,3}`,
			` ?[^\s\p{L}\p{N}]+[\r\n/]*`,
			`\s*[\r\n]+`,
			`\s+(?!\S)`,
			`\s+`,
		}, "|")
	case Cl100kBase:
		special = map[string]int{"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
			"<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
		pattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownEncoding, encoding)
	}
	// The offline loader reads the embedded file named like the URL's base.
	ranks, err := loader.NewOfflineLoader().LoadTiktokenBpe(encoding + ".tiktoken")
	if err != nil {
		return nil, fmt.Errorf("tiktoken: loading %s: %w", encoding, err)
	}
	bpe, err := tk.NewCoreBPE(ranks, special, pattern)
	if err != nil {
		return nil, fmt.Errorf("tiktoken: building %s: %w", encoding, err)
	}
	set := make(map[string]any, len(special))
	for k := range special {
		set[k] = true
	}
	c := &Counter{
		name: encoding,
		enc:  tk.NewTiktoken(bpe, &tk.Encoding{Name: encoding, PatStr: pattern, MergeableRanks: ranks, SpecialTokens: special}, set),
	}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Encoding returns the encoding's name.
func (c *Counter) Encoding() string { return c.name }

// CountTokens returns the number of tokens of text. Special-token strings
// are ordinary text.
func (c *Counter) CountTokens(text string) int64 {
	if c.sample <= 0 || len(text) <= c.sample {
		return int64(len(c.enc.EncodeOrdinary(text)))
	}
	cut := c.sample
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	if cut == 0 {
		return int64(len(c.enc.EncodeOrdinary(text)))
	}
	n := int64(len(c.enc.EncodeOrdinary(text[:cut])))
	// Scale by bytes, rounding up; both factors are small, no overflow.
	return (n*int64(len(text)) + int64(cut) - 1) / int64(cut)
}

// ForModel returns the encoding an OpenAI model uses: Cl100kBase for
// gpt-4 (not gpt-4o, gpt-4.1, gpt-4.5), gpt-3.5 and text-embedding-3 /
// ada-002; O200kBase for everything else, including gpt-5 and the
// o-series, which tiktoken-go does not map.
func ForModel(model string) string {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	switch {
	case strings.HasPrefix(m, "gpt-4o"), strings.HasPrefix(m, "gpt-4.1"), strings.HasPrefix(m, "gpt-4.5"),
		strings.HasPrefix(m, "chatgpt-4o"):
		return O200kBase
	case strings.HasPrefix(m, "gpt-4"), strings.HasPrefix(m, "gpt-3.5"), strings.HasPrefix(m, "gpt-35"),
		strings.HasPrefix(m, "text-embedding-3"), strings.HasPrefix(m, "text-embedding-ada-002"):
		return Cl100kBase
	}
	return O200kBase
}
