package tokens

import (
	"bytes"
	"mime"
	"strings"
)

// Format is the framing of a response body. The provider (OpenAI,
// Anthropic, Gemini, Ollama, Bedrock, OpenAI-compatible servers) is
// recognized from the JSON itself, so a Format only says how documents are
// delimited.
type Format uint8

const (
	// FormatAuto detects the framing from the content type, the request
	// path, and the first bytes of the body.
	FormatAuto Format = iota
	// FormatJSON is one JSON document, a top-level JSON array of documents
	// (Gemini streaming without alt=sse), or concatenated documents.
	FormatJSON
	// FormatSSE is a text/event-stream: each event's data is a document.
	FormatSSE
	// FormatNDJSON is one JSON document per line (Ollama native streams).
	FormatNDJSON
	// FormatUnsupported marks a body the meter cannot read (an unknown
	// content encoding such as br or zstd); it reports no usage.
	FormatUnsupported
)

// String returns the format's name.
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatJSON:
		return "json"
	case FormatSSE:
		return "sse"
	case FormatNDJSON:
		return "ndjson"
	case FormatUnsupported:
		return "unsupported"
	}
	return "invalid"
}

// DetectFormat returns the framing implied by a response Content-Type
// header and the request path (with its query). Content type wins, since a
// streaming request that fails answers with a JSON error body. It returns
// FormatAuto when neither decides; a Meter then looks at the first bytes.
func DetectFormat(contentType, path string) Format {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		switch mt {
		case "text/event-stream":
			return FormatSSE
		case "application/x-ndjson", "application/ndjson", "application/jsonl",
			"application/x-jsonlines", "application/jsonlines":
			return FormatNDJSON
		case "application/json":
			return FormatJSON
		}
		if strings.HasSuffix(mt, "+json") {
			return FormatJSON
		}
	}
	switch {
	case strings.Contains(path, "alt=sse"):
		return FormatSSE
	case strings.Contains(path, ":streamGenerateContent"):
		return FormatJSON // a JSON array of responses
	case strings.HasPrefix(path, "/api/chat"), strings.HasPrefix(path, "/api/generate"):
		return FormatNDJSON
	}
	return FormatAuto
}

// DefaultMaxEventBytes is the default bound, in bytes, on one SSE event's
// data and on one captured usage value.
const DefaultMaxEventBytes = 1 << 20

// MeterOption configures a Meter.
type MeterOption func(*meterConfig)

type meterConfig struct {
	format      Format
	contentType string
	path        string
	encoding    string
	maxEvent    int
}

// WithFormat fixes the framing instead of detecting it.
func WithFormat(f Format) MeterOption { return func(c *meterConfig) { c.format = f } }

// WithContentType passes the response Content-Type header for detection.
func WithContentType(ct string) MeterOption { return func(c *meterConfig) { c.contentType = ct } }

// WithPath passes the request path and query (for example
// "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse") for
// detection.
func WithPath(path string) MeterOption { return func(c *meterConfig) { c.path = path } }

// WithContentEncoding passes the response Content-Encoding header. "gzip"
// (and "x-gzip") bodies are decoded as they stream, without a goroutine;
// "" and "identity" bodies are read as they are; any other encoding makes
// the meter report no usage.
func WithContentEncoding(enc string) MeterOption {
	return func(c *meterConfig) { c.encoding = enc }
}

// WithMaxEventBytes bounds, in bytes, one SSE event's data and one captured
// usage value (default DefaultMaxEventBytes). Longer events are skipped.
// Values below 1 KiB are raised to 1 KiB.
func WithMaxEventBytes(n int) MeterOption { return func(c *meterConfig) { c.maxEvent = n } }

// meterKeys are the top-level members a JSON or NDJSON body is scanned for.
// Their order matches the indexes used in Meter.onDoc.
var meterKeys = []string{"type", "error", "usage", "usageMetadata", "prompt_eval_count", "eval_count"}

// Meter extracts token usage from a response body as it streams past. Feed
// it every byte the client receives, in order, through Write; after the last
// byte call Usage.
//
// Write never fails, never blocks, and never keeps the caller's slice.
// Memory stays bounded whatever the body size: at most about two
// MaxEventBytes for an SSE stream (plus up to 16 KiB of events that may
// carry usage, awaiting decoding), a few captured usage values for JSON and
// NDJSON, plus about 44 KiB of decoder state for a gzip body. An SSE event
// without usage costs no allocation.
//
// A Meter is not safe for concurrent use. It starts no goroutine. The zero
// value is not usable; call NewMeter.
type Meter struct {
	cfg    meterConfig
	format Format
	hint   Format // JSON or NDJSON from the headers, until the first byte agrees
	head   []byte // bytes held until the framing is known
	done   bool
	gz     *gunzip // non-nil for a gzip body

	sse  sseFramer
	json *jsonScanner
	t    tracker
	m    members
	pend []byte // SSE events that may carry usage, not yet decoded (pending.go)
}

// NewMeter returns a Meter configured by opts.
func NewMeter(opts ...MeterOption) *Meter {
	m := &Meter{cfg: meterConfig{maxEvent: DefaultMaxEventBytes}}
	for _, o := range opts {
		o(&m.cfg)
	}
	m.cfg.maxEvent = max(m.cfg.maxEvent, 1024)
	switch strings.ToLower(strings.TrimSpace(m.cfg.encoding)) {
	case "", "identity":
	case "gzip", "x-gzip":
		m.gz = &gunzip{out: m.feed}
	default:
		m.format = FormatUnsupported
		return m
	}
	m.format = m.cfg.format
	if m.format == FormatAuto {
		// A detected JSON framing is only a hint: some servers label event
		// streams application/json, and the first byte tells them apart.
		switch f := DetectFormat(m.cfg.contentType, m.cfg.path); f {
		case FormatJSON, FormatNDJSON:
			m.hint = f
		default:
			m.format = f
		}
	}
	if m.format > FormatUnsupported {
		m.format = FormatAuto
	}
	return m
}

// Format returns the framing in use: the one chosen or detected, or
// FormatAuto while the first bytes have not decided yet. A JSON or NDJSON
// content type is confirmed by the first significant byte ('{' or '['); a
// body labelled JSON that starts otherwise is read as SSE.
func (m *Meter) Format() Format { return m.format }

// Write feeds the next bytes of the body. It always returns len(p), nil.
// Bytes written after Usage or Close are ignored.
func (m *Meter) Write(p []byte) (int, error) {
	if m.done || m.format == FormatUnsupported {
		return len(p), nil
	}
	if m.gz != nil {
		m.gz.write(p)
		return len(p), nil
	}
	m.feed(p)
	return len(p), nil
}

// feed passes decoded body bytes to the framer.
func (m *Meter) feed(p []byte) {
	if m.format == FormatAuto {
		m.head = append(m.head, p...)
		f := sniff(m.head)
		if f == FormatAuto {
			return
		}
		if f == FormatJSON && m.hint != FormatAuto {
			f = m.hint
		}
		m.format = f
		p, m.head = m.head, nil
	}
	switch m.format {
	case FormatSSE:
		if m.sse.onEvent == nil {
			m.sse.max = m.cfg.maxEvent
			m.sse.onEvent = m.onEvent
			m.sse.marks = true
		}
		m.sse.write(p)
	case FormatJSON, FormatNDJSON:
		if m.json == nil {
			m.json = newJSONScanner(meterKeys, min(m.cfg.maxEvent, 64<<10), m.onDoc)
		}
		m.json.write(p)
	}
}

// sniff decides the framing from the first significant byte: '{' or '['
// start JSON, anything else SSE. Up to 512 bytes of BOM and whitespace are
// waited through.
func sniff(head []byte) Format {
	if len(head) < len(bom) && bytes.HasPrefix(bom, head) {
		return FormatAuto // maybe a BOM split between writes
	}
	b := bytes.TrimPrefix(head, bom)
	b = bytes.TrimLeft(b, " \t\r\n")
	switch {
	case len(b) > 0 && (b[0] == '{' || b[0] == '['):
		return FormatJSON
	case len(b) > 0:
		return FormatSSE
	case len(head) > 512:
		return FormatSSE
	}
	return FormatAuto
}

func (m *Meter) onEvent(data []byte) {
	// Most events start with a member that is neither "error", "type" nor
	// "object": they are told apart without a call to looksLikeError.
	if (len(data) < 3 || data[0] != '{' || data[1] != '"' || data[2] == 'e' || data[2] == 't' || data[2] == 'o') &&
		looksLikeError(data) {
		m.t.sawError = true
	}
	switch m.sse.eventMark {
	case markPresent:
		m.deferEvent(data)
	case markUnknown:
		if mayCarryUsage(data) {
			m.deferEvent(data)
		}
	}
}

func (m *Meter) onDoc(vals [][]byte, trunc []bool) {
	m.m = members{
		typ: vals[0], err: vals[1], usage: vals[2], usageMeta: vals[3],
		promptEval: vals[4], eval: vals[5],
	}
	if trunc[1] {
		m.m.err = []byte("true") // too long to keep, certainly not null
	}
	m.t.apply(&m.m)
	m.m = members{}
}

// Close ends the body: an unterminated last event or document is
// discarded, and the buffers are released. It always returns nil; calling
// it again does nothing.
func (m *Meter) Close() error {
	if m.done {
		return nil
	}
	m.done = true
	m.flushPending()
	m.head, m.gz, m.json, m.pend = nil, nil, nil, nil
	m.sse.line, m.sse.data = nil, nil
	return nil
}

// Usage ends the body (as Close does) and returns the last usage snapshot
// it carried, normalized; ok is false when the body carried no complete
// usage (an error body, a stream without usage, a truncated usage event, a
// body the meter could not read).
func (m *Meter) Usage() (u Usage, ok bool) {
	m.Close()
	return m.t.usage()
}

// SawError reports whether the body was an error body or carried an error
// event (OpenAI-style `{"error":...}`, Anthropic and Responses `error`
// events, `response.failed`). Usage may still be ok: a stream that fails
// after reporting usage keeps its last snapshot, which may undercount the
// output.
func (m *Meter) SawError() bool {
	m.flushPending()
	return m.t.sawError
}
