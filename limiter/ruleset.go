package limiter

import (
	"fmt"
	"slices"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
)

// compiledRule is a validated rule with what the hot path needs precomputed.
type compiledRule struct {
	Rule
	prefix   string // name "/" fingerprint: the static part of counter keys
	params   algorithms.Params
	capacity int64
	delayed  bool
	settles  bool // the request must be settled or cancelled
}

// ruleSet is an immutable set of rules; the limiter swaps whole sets.
type ruleSet struct {
	rules     []compiledRule
	unindexed []int32
	index     map[dimensions.Dimension]map[string][]int32
	indexDims []dimensions.Dimension
	guards    bool // some rule is a guard
}

// RuleError is the error about one rule of a set: its index in the slice
// given, and what is wrong. It wraps ErrInvalidRule.
type RuleError struct {
	Index int
	Err   error
}

// Error returns "rule <index>: <what is wrong>".
func (e *RuleError) Error() string { return fmt.Sprintf("rule %d: %v", e.Index, e.Err) }

// Unwrap returns the underlying error.
func (e *RuleError) Unwrap() error { return e.Err }

func compile(rules []Rule, hasFallback bool) (*ruleSet, error) {
	set := &ruleSet{rules: make([]compiledRule, len(rules))}
	seen := make(map[string]bool, len(rules))
	for i := range rules {
		r := rules[i]
		if err := r.Validate(); err != nil {
			return nil, &RuleError{i, err}
		}
		if seen[r.Name] {
			return nil, &RuleError{i, fmt.Errorf("%w %q: duplicate name", ErrInvalidRule, r.Name)}
		}
		seen[r.Name] = true
		if r.OnStoreError == FailLocal && !hasFallback {
			return nil, &RuleError{i, fmt.Errorf("%w %q: fail mode local needs WithFallback", ErrInvalidRule, r.Name)}
		}
		r.By = slices.Clone(r.By)
		r.Thresholds = slices.Clone(r.Thresholds)
		c := compiledRule{Rule: r, prefix: r.Name + "/" + r.fingerprint(), params: r.params(), delayed: r.delayed()}
		c.capacity = c.params.Capacity()
		c.settles = c.delayed || r.Unit != Requests || c.params.Kind == algorithms.Concurrency
		if r.Guard != nil {
			c.delayed, c.settles, c.capacity = false, false, 0
			set.guards = true
		}
		set.rules[i] = c
		switch m := r.When.(type) {
		case IndexedMatcher:
			d, v := m.IndexKey()
			set.addIndex(d, int32(i), v)
		case SetIndexedMatcher:
			d, vs := m.IndexKeys()
			set.addIndex(d, int32(i), vs...)
		default:
			set.unindexed = append(set.unindexed, int32(i))
		}
	}
	return set, nil
}

// addIndex files rule i under each of the values of dimension d.
func (s *ruleSet) addIndex(d dimensions.Dimension, i int32, values ...string) {
	if s.index == nil {
		s.index = map[dimensions.Dimension]map[string][]int32{}
	}
	byValue := s.index[d]
	if byValue == nil {
		byValue = map[string][]int32{}
		s.index[d] = byValue
		s.indexDims = append(s.indexDims, d)
	}
	for _, v := range slices.Compact(slices.Sorted(slices.Values(values))) {
		byValue[v] = append(byValue[v], i)
	}
}

// match appends to out the indices of the rules that apply to req, in rule
// order.
func (s *ruleSet) match(req *Request, out []int32) []int32 {
	out = append(out, s.unindexed...)
	merged := false
	for _, d := range s.indexDims {
		v, ok := req.Get(d)
		if !ok {
			continue
		}
		if hits := s.index[d][v]; len(hits) > 0 {
			out = append(out, hits...)
			merged = true
		}
	}
	if merged {
		slices.Sort(out)
	}
	n := 0
	for _, i := range out {
		if s.rules[i].applies(req) {
			out[n] = i
			n++
		}
	}
	return out[:n]
}

func (c *compiledRule) applies(req *Request) bool {
	if c.Mode == Off {
		return false
	}
	for _, d := range c.By {
		if _, ok := req.Get(d); !ok {
			return false
		}
	}
	return c.When == nil || c.When.Match(req)
}
