package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
)

// compiler turns a decoded document into limiter rules.
type compiler struct {
	p        *problems
	nSchema  int // the first nSchema problems came from the schema
	env      *cel.Env
	varNames []string
	attrs    []string
	dims     map[string]bool // dimensions by may name: predefined and declared
	stats    *evalStats

	rules   []limiter.Rule
	entries map[string]*entry
	order   []*entry
}

// entry is one rule of the document on its way to a limiter.Rule.
type entry struct {
	path    string
	doc     *ruleDoc
	chain   []layer
	matcher limiter.Matcher // the rule's and its group's predicates
	rule    limiter.Rule
	ok      bool // rule is usable (as a parent, too)
	state   uint8
}

// layer is one scope's settings, narrowest-first after the overrides.
type layer struct {
	s    *settings
	path string
}

// fail records a semantic problem unless the schema already reported one
// at, inside or around path.
func (c *compiler) fail(path string, value any, suggestion, format string, args ...any) {
	if covered(c.p.list[:c.nSchema], path) {
		return
	}
	msg := fmt.Sprintf(format, args...)
	for _, e := range c.p.list[c.nSchema:] {
		if e.Path == path && e.Message == msg {
			return
		}
	}
	c.p.addErr(&Error{Path: path, Value: value, Message: msg, Suggestion: suggestion})
}

func (c *compiler) compile(doc *document) {
	c.entries = map[string]*entry{}
	for i, a := range doc.Attributes {
		if slices.Contains(predefinedNames(), a) || slices.Contains(reservedAttributes, a) {
			c.fail(pointer("/attributes", i), a, "", "%q is predefined: remove it from attributes", a)
		}
	}
	c.checkSettings(doc.Defaults, "/defaults")
	c.checkSettings(doc.Overrides, "/overrides")

	c.compileModels(doc)
	top := []layer{{doc.Overrides, "/overrides"}}
	bottom := []layer{{doc.Defaults, "/defaults"}}
	for i := range doc.Rules {
		c.addRule(&doc.Rules[i], pointer("/rules", i), top, bottom, nil)
	}
	groups := map[string]string{}
	for gi := range doc.Groups {
		g := &doc.Groups[gi]
		gp := pointer("/groups", gi)
		if prev, dup := groups[g.Name]; dup && g.Name != "" {
			c.fail(gp+"/name", g.Name, "", "duplicate group name %q (first at %s)", g.Name, prev)
		}
		groups[g.Name] = gp
		c.checkSettings(g.Defaults, gp+"/defaults")
		c.checkSettings(g.Overrides, gp+"/overrides")
		var gm limiter.Matcher
		if g.When != "" {
			gm = c.compilePredicate("group:"+g.Name, g.When, gp+"/when")
		}
		gtop := append(slices.Clone(top), layer{g.Overrides, gp + "/overrides"})
		gbottom := append([]layer{{g.Defaults, gp + "/defaults"}}, bottom...)
		for i := range g.Rules {
			c.addRule(&g.Rules[i], pointer(gp+"/rules", i), gtop, gbottom, gm)
		}
	}
	for _, e := range c.order {
		if e.doc.Parent != "" {
			c.resolveChild(e, nil)
		}
	}
	for _, e := range c.order {
		if !e.ok {
			continue
		}
		if err := e.rule.Validate(); err != nil {
			c.fail(e.path, nil, "", "%s", strings.TrimPrefix(err.Error(), "limiter: "))
			continue
		}
		c.rules = append(c.rules, e.rule)
	}
}

// register records a rule name, refusing duplicates; namePath is where
// the name is written.
func (c *compiler) register(name, namePath string, e *entry) bool {
	if prev, dup := c.entries[name]; dup {
		c.fail(namePath, name, "", "duplicate rule name %q (first at %s)", name, prev.path)
		return false
	}
	c.entries[name] = e
	c.order = append(c.order, e)
	return true
}

func (c *compiler) addRule(r *ruleDoc, path string, top, bottom []layer, groupWhen limiter.Matcher) {
	e := &entry{path: path, doc: r}
	e.chain = append(append(slices.Clone(top), layer{r.own(), path}), bottom...)
	if r.Name == "" || !c.register(r.Name, path+"/name", e) {
		return
	}
	c.checkSettings(r.own(), path)
	var m limiter.Matcher
	if r.When != "" {
		m = c.compilePredicate(r.Name, r.When, path+"/when")
		if m == nil {
			return
		}
	}
	e.matcher = both(groupWhen, m)
	e.rule = limiter.Rule{Name: r.Name, When: e.matcher, Thresholds: r.Thresholds}
	guardFields := r.isGuard()
	switch {
	case r.Parent != "" && r.Limit != nil:
		c.fail(path+"/limit", nil, "", "a rule with a parent takes its limit from the parent (share sets the fraction): remove limit or parent")
	case r.Parent != "" && guardFields:
		c.fail(path+"/parent", r.Parent, "", "a guard rule (allow_models, deny_models, max_*_tokens) has no parent")
	case r.Parent != "":
		c.checkChild(e)
		return // resolved once every rule is known
	case r.Share != nil:
		c.fail(path+"/share", r.Share, "", "share needs a parent: it is a fraction of the parent's limit")
	case guardFields && r.Limit != nil:
		c.fail(path+"/limit", nil, "", "a guard rule (allow_models, deny_models, max_*_tokens) counts nothing and has no limit: split it into two rules")
	case guardFields:
		c.buildGuard(e)
	case r.Limit == nil:
		c.fail(path, nil, "", "rule %q has neither limit, parent nor guard fields (allow_models, deny_models, max_input_tokens, max_output_tokens)", r.Name)
	default:
		c.buildLimit(e)
	}
}

// pick returns the first value set along the chain (overrides, the rule,
// defaults), and the path of the scope that set it.
func pick[T any](chain []layer, get func(*settings) *T) (*T, string) {
	for _, l := range chain {
		if l.s == nil {
			continue
		}
		if v := get(l.s); v != nil {
			return v, l.path
		}
	}
	return nil, ""
}

func (c *compiler) common(e *entry) {
	if v, _ := pick(e.chain, func(s *settings) *string { return s.Mode }); v != nil {
		e.rule.Mode, _ = limiter.ParseMode(*v)
	}
	if v, _ := pick(e.chain, func(s *settings) *string { return s.OnStoreError }); v != nil {
		e.rule.OnStoreError, _ = limiter.ParseFailMode(*v)
	}
	if v, _ := pick(e.chain, func(s *settings) *rejectDoc { return s.Reject }); v != nil {
		e.rule.Reject = v.rejection()
	}
}

func (c *compiler) by(e *entry) []dimensions.Dimension {
	v, _ := pick(e.chain, func(s *settings) *[]string { return s.By })
	if v == nil {
		return nil
	}
	out := make([]dimensions.Dimension, 0, len(*v))
	for _, d := range *v {
		out = append(out, dimensions.Dimension(d))
	}
	return out
}

func (c *compiler) buildLimit(e *entry) {
	r := e.doc
	c.common(e)
	e.rule.By = c.by(e)
	e.ok = true
	if r.Unit != "" {
		e.rule.Unit, _ = limiter.ParseUnit(r.Unit)
	}
	switch r.Timing {
	case "before":
		e.rule.Timing = limiter.Before
	case "after":
		e.rule.Timing = limiter.After
	}
	algo, algoPath := pick(e.chain, func(s *settings) *string { return s.Algorithm })
	if r.Calendar != "" {
		// A calendar rule counts with fixed_window: defaults do not apply.
		if algo != nil && !strings.HasSuffix(algoPath, "/defaults") && *algo != "fixed_window" {
			c.fail(e.path+"/calendar", r.Calendar, "", "calendar windows count with fixed_window, but %s/algorithm sets %s", algoPath, *algo)
			e.ok = false
		}
		e.rule.Algorithm = algorithms.FixedWindow
		e.rule.Calendar = map[string]limiter.Calendar{"day": limiter.Day, "week": limiter.Week, "month": limiter.Month}[r.Calendar]
		tz, tzPath := pick(e.chain, func(s *settings) *string { return s.Timezone })
		if tz != nil {
			loc, err := time.LoadLocation(*tz)
			if err != nil {
				c.fail(tzPath+"/timezone", *tz, "", "%q is not an IANA time zone (such as \"Europe/Berlin\" or \"UTC\")", *tz)
				e.ok = false
			}
			e.rule.Location = loc
		} else {
			e.rule.Location = time.UTC
		}
		n, ok := c.count(r.Limit, e.path+"/limit")
		e.rule.Limit = n
		e.ok = e.ok && ok
	} else {
		if r.Timezone != nil {
			c.fail(e.path+"/timezone", *r.Timezone, "", "timezone applies to calendar windows only: add calendar (day, week, month) or remove timezone")
			e.ok = false
		}
		if algo != nil {
			e.rule.Algorithm, _ = algorithms.ParseKind(*algo)
		}
		rate, ok := c.rate(r.Limit, e.path+"/limit")
		e.rule.Limit, e.rule.Period = rate.Limit, rate.Period
		e.ok = e.ok && ok
	}
	if r.Burst != nil {
		k := e.rule.Algorithm
		if k == 0 {
			k = algorithms.TokenBucket
		}
		if k != algorithms.TokenBucket && k != algorithms.GCRA {
			c.fail(e.path+"/burst", *r.Burst, "", "burst applies to token_bucket and gcra, not %s", k)
			e.ok = false
		}
		e.rule.Burst = *r.Burst
	}
}

// rate reads a non-calendar limit.
func (c *compiler) rate(raw json.RawMessage, path string) (Rate, bool) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if json.Unmarshal(raw, &n) == nil && !covered(c.p.list[:c.nSchema], path) {
			c.p.addErr(limitNumberError(path, n))
		}
		return Rate{}, false
	}
	r, e := parseRate(s)
	if e != nil {
		c.fail(path, s, e.Suggestion, "%s", e.Message)
		return Rate{}, false
	}
	return r, true
}

// count reads a calendar limit: a whole number.
func (c *compiler) count(raw json.RawMessage, path string) (int64, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		sug := ""
		if r, e := parseRate(s); e == nil {
			sug = strconv.FormatInt(r.Limit, 10)
		}
		c.fail(path, s, sug, "a calendar rule's limit is a count per calendar period, a number such as 200000, not %q", s)
		return 0, false
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil || n < 0 || n > algorithms.MaxLimit {
		c.fail(path, string(raw), "", "limit %s is not a count from 0 to 2^53", raw)
		return 0, false
	}
	return n, true
}

func (c *compiler) buildGuard(e *entry) {
	r := e.doc
	for _, f := range []struct {
		field string
		set   bool
	}{{"calendar", r.Calendar != ""}, {"timezone", r.Timezone != nil}, {"algorithm", r.Algorithm != nil}, {"burst", r.Burst != nil},
		{"unit", r.Unit != ""}, {"timing", r.Timing != ""}, {"on_store_error", r.OnStoreError != nil}, {"thresholds", r.Thresholds != nil}} {
		if field := f.field; f.set {
			c.fail(e.path+"/"+field, nil, "", "a guard rule (allow_models, deny_models, max_*_tokens) counts nothing: %s does not apply", field)
			return
		}
	}
	bad := false
	for _, l := range []struct {
		field string
		list  []string
	}{{"allow_models", r.AllowModels}, {"deny_models", r.DenyModels}} {
		for i, m := range l.list {
			if strings.Contains(strings.TrimSuffix(m, "*"), "*") {
				c.fail(pointer(e.path+"/"+l.field, i), m, "", "model pattern %q: only a final * is supported (a prefix match)", m)
				bad = true
			}
		}
	}
	if bad {
		return
	}
	c.common(e)
	e.rule.By = c.by(e)
	var maxIn, maxOut int64
	if r.MaxInputTokens != nil {
		maxIn = *r.MaxInputTokens
	}
	if r.MaxOutputTokens != nil {
		maxOut = *r.MaxOutputTokens
	}
	e.rule.Guard = newGuard(r.Name, r.AllowModels, r.DenyModels, maxIn, maxOut).check
	e.ok = true
}

// checkChild refuses the fields a child takes from its parent.
func (c *compiler) checkChild(e *entry) {
	r := e.doc
	for _, f := range []struct {
		field string
		set   bool
	}{{"calendar", r.Calendar != ""}, {"timezone", r.Timezone != nil}, {"algorithm", r.Algorithm != nil}, {"burst", r.Burst != nil},
		{"unit", r.Unit != ""}, {"timing", r.Timing != ""}} {
		if field := f.field; f.set {
			c.fail(e.path+"/"+field, nil, "", "a rule with a parent takes %s from the parent: remove it", field)
		}
	}
	if r.Share == nil {
		c.fail(e.path, nil, "", "a rule with a parent needs share, the fraction of the parent's limit it may use, in (0, 1]")
	}
}

// resolveChild builds a rule with a parent, after its parent: an extra
// limiter rule with the parent's algorithm, period and unit, share times
// its limit and burst, keyed by the parent's and its own dimensions, that
// matches where both match. Check charges it and the parent together.
func (c *compiler) resolveChild(e *entry, stack []*entry) {
	switch e.state {
	case 2:
		return
	case 1:
		var names []string
		for _, s := range stack[slices.Index(stack, e):] {
			names = append(names, s.doc.Name)
		}
		names = append(names, e.doc.Name)
		c.fail(e.path+"/parent", e.doc.Parent, "", "parent cycle: %s", strings.Join(names, " -> "))
		return
	}
	e.state = 1
	defer func() { e.state = 2 }()
	r := e.doc
	parent := c.entries[r.Parent]
	if parent == nil {
		var names []string
		for n := range c.entries {
			names = append(names, n)
		}
		slices.Sort(names)
		c.fail(e.path+"/parent", r.Parent, closest(r.Parent, names), "no rule is named %q", r.Parent)
		return
	}
	if parent.doc.Parent != "" {
		c.resolveChild(parent, append(stack, e))
	}
	if !parent.ok || r.Share == nil {
		return
	}
	if parent.rule.Guard != nil {
		c.fail(e.path+"/parent", r.Parent, "", "parent %q is a guard rule, which counts nothing", r.Parent)
		return
	}
	share, ok := new(big.Rat).SetString(r.Share.String())
	if !ok || share.Sign() <= 0 || share.Cmp(big.NewRat(1, 1)) > 0 {
		c.fail(e.path+"/share", r.Share, "", "share %s is outside (0, 1]: it is the fraction of the parent's limit", r.Share)
		return
	}
	p := parent.rule
	e.rule.Algorithm, e.rule.Period, e.rule.Unit, e.rule.Timing = p.Algorithm, p.Period, p.Unit, p.Timing
	e.rule.Calendar, e.rule.Location = p.Calendar, p.Location
	e.rule.Limit = scale(share, p.Limit)
	e.rule.Burst = scale(share, p.Burst)
	if e.rule.Limit == 0 && p.Limit > 0 {
		c.fail(e.path+"/share", r.Share, "", "share %s of the parent's limit %d is less than 1", r.Share, p.Limit)
		return
	}
	c.common(e)
	e.rule.By = p.By
	for _, d := range c.by(e) {
		if !slices.Contains(e.rule.By, d) {
			e.rule.By = append(slices.Clip(e.rule.By), d)
		}
	}
	e.rule.When = both(parent.rule.When, e.matcher)
	e.ok = true
}

// scale returns floor(share * n).
func scale(share *big.Rat, n int64) int64 {
	x := new(big.Rat).Mul(share, new(big.Rat).SetInt64(n))
	return new(big.Int).Quo(x.Num(), x.Denom()).Int64()
}

var compactKeys = []struct {
	key    string
	unit   limiter.Unit
	period time.Duration
}{
	{"rps", limiter.Requests, time.Second}, {"rpm", limiter.Requests, time.Minute},
	{"rph", limiter.Requests, time.Hour}, {"rpd", limiter.Requests, 24 * time.Hour},
	{"tps", limiter.Tokens, time.Second}, {"tpm", limiter.Tokens, time.Minute},
	{"tph", limiter.Tokens, time.Hour}, {"tpd", limiter.Tokens, 24 * time.Hour},
}

// compileModels translates the compact per-model form: each rate_limit
// entry becomes a rule named "model:<model>:<key>" that matches the model
// (an indexed equality) and has one counter.
func (c *compiler) compileModels(doc *document) {
	chain := []layer{{doc.Overrides, "/overrides"}, {doc.Defaults, "/defaults"}}
	for i, m := range doc.Models {
		mp := pointer("/models", i)
		if m.Model == "" {
			continue
		}
		for _, k := range compactKeys {
			n, ok := m.RateLimit[k.key]
			if !ok {
				continue
			}
			name := "model:" + sanitizeName(m.Model) + ":" + k.key
			e := &entry{path: mp, doc: &ruleDoc{Name: name}, chain: chain}
			if !c.register(name, mp+"/model", e) {
				continue
			}
			c.common(e)
			e.rule.Name = name
			e.rule.When = limiter.Equal(dimensions.Model, m.Model)
			e.rule.Limit, e.rule.Period, e.rule.Unit = n, k.period, k.unit
			if v, _ := pick(chain, func(s *settings) *string { return s.Algorithm }); v != nil {
				e.rule.Algorithm, _ = algorithms.ParseKind(*v)
			}
			e.matcher = e.rule.When
			e.ok = true
			e.state = 2
		}
	}
}

// checkSettings checks the values of one scope that the schema cannot.
func (c *compiler) checkSettings(s *settings, path string) {
	if s == nil {
		return
	}
	if s.By != nil {
		for i, d := range *s.By {
			if !c.dims[d] {
				e := dimensionError(d, c.attrs)
				c.fail(pointer(path+"/by", i), d, e.Suggestion, "%s", e.Message)
			}
		}
	}
	if s.Timezone != nil {
		if _, err := time.LoadLocation(*s.Timezone); err != nil {
			c.fail(path+"/timezone", *s.Timezone, "", "%q is not an IANA time zone (such as \"Europe/Berlin\" or \"UTC\")", *s.Timezone)
		}
	}
	if s.Reject != nil {
		for k, v := range s.Reject.Headers {
			hp := pointer(path+"/reject/headers", k)
			if !validHeaderName(k) {
				c.fail(hp, k, "", "%q is not an HTTP header name", k)
			} else if strings.ContainsAny(v, "\r\n\x00") {
				c.fail(hp, v, "", "header value contains a line break or NUL")
			}
		}
		if ct := s.Reject.ContentType; strings.ContainsAny(ct, "\r\n\x00") {
			c.fail(path+"/reject/content_type", ct, "", "content type contains a line break or NUL")
		}
	}
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

func (r *rejectDoc) rejection() *limiter.Rejection {
	x := &limiter.Rejection{Status: r.Status, ContentType: r.ContentType}
	if x.Status == 0 {
		x.Status = http.StatusTooManyRequests
	}
	if r.Body != nil {
		x.Body = bytes.Clone([]byte(*r.Body))
	}
	if len(r.Headers) > 0 {
		x.Headers = make(map[string]string, len(r.Headers))
		for k, v := range r.Headers {
			x.Headers[http.CanonicalHeaderKey(k)] = v
		}
	}
	return x
}

// both returns a Matcher for requests a and b both match, keeping an
// index key of either.
func both(a, b limiter.Matcher) limiter.Matcher {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	m := allOf{a, b}
	for _, x := range []limiter.Matcher{a, b} {
		if im, ok := x.(limiter.IndexedMatcher); ok {
			d, v := im.IndexKey()
			return limiter.Indexed(d, v, m)
		}
	}
	return m
}

type allOf struct{ a, b limiter.Matcher }

func (m allOf) Match(r *limiter.Request) bool { return m.a.Match(r) && m.b.Match(r) }
