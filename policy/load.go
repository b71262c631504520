package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/tokens"
)

// MaxDocumentSize is the largest document Load accepts, in bytes.
const MaxDocumentSize = 8 << 20

// Policy is a loaded, valid policy document: the limiter rules it compiles
// to. It is immutable and safe for concurrent use.
type Policy struct {
	rules  []limiter.Rule
	prices *tokens.PriceTable
	stats  *evalStats
}

// Rules returns the policy's rules, for limiter.New or Limiter.SetRules.
// The slice is a fresh copy; the rules' predicates are shared and safe
// for concurrent use.
func (p *Policy) Rules() []limiter.Rule { return slices.Clone(p.rules) }

// Prices returns the document's price table (its prices section), or nil
// when it has none. Adapters use it to compute Estimate.Cost and the
// settled cost for rules whose unit is cost.
func (p *Policy) Prices() *tokens.PriceTable { return p.prices }

// EvalErrors returns how many predicate evaluations of this policy's
// rules have failed (and were treated as no match) so far.
func (p *Policy) EvalErrors() uint64 { return p.stats.errors.Load() }

// Option configures Load, LoadFile and NewReloader.
type Option func(*options)

type options struct {
	logger       *slog.Logger
	evalHook     func(rule string, err error)
	reloadHook   func(ReloadEvent)
	pollInterval time.Duration
}

func newOptions(opts []Option) options {
	o := options{logger: slog.New(slog.DiscardHandler), pollInterval: 2 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	return o
}

// WithLogger sets the logger for predicate evaluation errors and reloads;
// the default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithEvalErrorHook sets a function called, on the request's goroutine,
// each time a predicate fails to evaluate (the rule then does not match):
// a place to count a metric. It must be fast and safe for concurrent use.
func WithEvalErrorHook(f func(rule string, err error)) Option {
	return func(o *options) { o.evalHook = f }
}

// Load parses a policy document, YAML or JSON (the same document means the
// same in both), validates it against the schema and then semantically,
// and compiles it. On failure it returns every problem found, each an
// *Error, joined with errors.Join; see Errors.
func Load(data []byte, opts ...Option) (*Policy, error) {
	o := newOptions(opts)
	return load(data, &o)
}

// LoadFile reads and loads the document at path.
func LoadFile(path string, opts ...Option) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return Load(data, opts...)
}

func load(data []byte, o *options) (*Policy, error) {
	p := &problems{}
	if len(data) > MaxDocumentSize {
		p.add("", nil, "", "document is %d bytes, over the %d-byte limit", len(data), MaxDocumentSize)
		return nil, p.err()
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		msg := strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "error converting YAML to JSON: ")), " ")
		if strings.Contains(msg, "already set in map") {
			msg = "duplicate key: " + msg
		}
		p.add("", nil, "", "not a YAML or JSON document: %s", msg)
		return nil, p.err()
	}
	var raw any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		p.add("", nil, "", "not a YAML or JSON document: %v", err)
		return nil, p.err()
	}
	var attrs []string
	if m, ok := raw.(map[string]any); ok {
		if list, ok := m["attributes"].([]any); ok {
			for _, a := range list {
				if s, ok := a.(string); ok && s != "" {
					attrs = append(attrs, s)
				}
			}
		}
	}
	validateSchema(raw, attrs, p)
	var doc document
	if _, isObject := raw.(map[string]any); !isObject {
		return nil, p.err()
	}
	_ = json.Unmarshal(js, &doc) // type mismatches are schema errors, already reported

	stats := &evalStats{logger: o.logger, hook: o.evalHook}
	var declared []string // attributes that do not clash with a predefined name
	for _, a := range doc.Attributes {
		if !slices.Contains(predefinedNames(), a) && !slices.Contains(reservedAttributes, a) {
			declared = append(declared, a)
		}
	}
	env, names, err := newEnv(declared)
	if err != nil {
		p.add("/attributes", nil, "", "cannot declare attributes: %v", err)
		return nil, p.err()
	}
	c := &compiler{p: p, nSchema: len(p.list), env: env, varNames: names, attrs: doc.Attributes, dims: map[string]bool{}, stats: stats}
	for _, d := range append(predefinedNames(), doc.Attributes...) {
		c.dims[d] = true
	}
	c.compile(&doc)
	prices := c.compilePrices(doc.Prices)
	if err := p.err(); err != nil {
		return nil, err
	}
	return &Policy{rules: c.rules, prices: prices, stats: stats}, nil
}
