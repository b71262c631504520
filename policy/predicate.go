package policy

import (
	"fmt"
	"log/slog"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
)

// requestStrings are the string attributes of request every predicate may
// read, besides the declared custom attributes.
var requestStrings = []string{"user", "tenant", "api_key", "model", "tool", "route", "client_ip", "method"}

// predicateCostLimit bounds the work of one evaluation of a predicate
// with a comprehension (CEL cost units), so a predicate that loops over a
// huge header map cannot stall checks.
const predicateCostLimit = 100_000

// newEnv returns the CEL environment of a document with the given custom
// attributes.
func newEnv(attrs []string) (*cel.Env, []string, error) {
	var opts []cel.EnvOption
	var names []string
	for _, v := range append(slices.Clone(requestStrings), attrs...) {
		opts = append(opts, cel.Variable("request."+v, cel.StringType))
		names = append(names, "request."+v)
	}
	opts = append(opts,
		cel.Variable("request.headers", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("auth.identity", cel.MapType(cel.StringType, cel.DynType)),
	)
	names = append(names, "request.headers", "auth.identity")
	env, err := cel.NewEnv(opts...)
	return env, names, err
}

// evalStats counts predicate evaluation errors of one Policy.
type evalStats struct {
	activations sync.Pool // of *activation, so evaluations do not allocate one
	errors      atomic.Uint64
	logger      *slog.Logger
	hook        func(rule string, err error)
}

// predicate is a compiled `when` expression. It is safe for concurrent use.
type predicate struct {
	rule   string
	src    string
	prg    cel.Program
	errors atomic.Uint64
	stats  *evalStats
}

// Match evaluates the predicate on r. An evaluation error, or a result
// that is not a boolean, is no match: it is counted, passed to the hook,
// and logged (the 1st, 2nd, 4th, 8th... error of each predicate, so a
// broken predicate cannot flood the log).
func (p *predicate) Match(r *limiter.Request) bool {
	act, _ := p.stats.activations.Get().(*activation)
	if act == nil {
		act = new(activation)
	}
	act.r = r
	out, _, err := p.prg.Eval(act)
	act.r = nil
	p.stats.activations.Put(act)
	if err == nil {
		if b, ok := out.(types.Bool); ok {
			return bool(b)
		}
		err = fmt.Errorf("predicate returned %s, not a bool", out.Type().TypeName())
	}
	n := p.errors.Add(1)
	p.stats.errors.Add(1)
	if p.stats.hook != nil {
		p.stats.hook(p.rule, err)
	}
	if bits.OnesCount64(n) == 1 {
		p.stats.logger.Warn("tollgate: predicate failed; the rule does not match",
			slog.String("rule", p.rule), slog.String("when", p.src), slog.Any("error", err), slog.Uint64("errors", n))
	}
	return false
}

// activation resolves predicate variables from a request, lazily: only the
// variables a predicate reads are looked up.
type activation struct{ r *limiter.Request }

func (a *activation) ResolveName(name string) (any, bool) {
	r := a.r
	switch name {
	case "request.user":
		return r.User, true
	case "request.tenant":
		return r.Tenant, true
	case "request.api_key":
		return r.APIKey, true
	case "request.model":
		return r.Model, true
	case "request.tool":
		return r.Tool, true
	case "request.route":
		return r.Route, true
	case "request.client_ip":
		return r.ClientIP, true
	case "request.method":
		return r.Method, true
	case "request.headers":
		h := make(map[string]string, len(r.Header))
		for k, v := range r.Header {
			h[strings.ToLower(k)] = strings.Join(v, ", ")
		}
		return h, true
	case "auth.identity":
		if r.Identity == nil {
			return map[string]any{}, true
		}
		return r.Identity, true
	}
	if attr, ok := strings.CutPrefix(name, "request."); ok {
		return r.Custom[attr], true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }

var _ interpreter.Activation = (*activation)(nil)

// compilePredicate compiles src for the named rule. It returns a Matcher
// that the limiter indexes when src is, or starts with, an equality of a
// dimension and a string: `request.model == "gpt-4"` becomes
// limiter.Equal (no CEL at run time), `request.model == "gpt-4" && rest`
// becomes limiter.Indexed around the whole predicate.
func (c *compiler) compilePredicate(rule, src, path string) limiter.Matcher {
	checked, iss := c.env.Compile(src)
	if iss != nil && iss.Err() != nil {
		var msgs []string
		for _, e := range iss.Errors() {
			msgs = append(msgs, fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message))
		}
		hint := ""
		if strings.Contains(strings.Join(msgs, " "), "undeclared reference") {
			hint = " (variables: request.<field>, request.headers, auth.identity.<claim>; declare custom request fields under attributes)"
		}
		c.fail(path, src, c.suggestPredicate(src), "predicate does not compile: %s%s", strings.Join(msgs, "; "), hint)
		return nil
	}
	if t := checked.OutputType(); !t.IsExactType(types.BoolType) && !t.IsExactType(types.DynType) {
		c.fail(path, src, "", "predicate is a %s, not a bool", cel.FormatCELType(t))
		return nil
	}
	d, v, whole, indexed := c.indexKey(checked.NativeRep())
	if indexed && whole {
		return limiter.Equal(d, v)
	}
	popts := []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize)}
	if len(ast.MatchDescendants(ast.NavigateAST(checked.NativeRep()), ast.KindMatcher(ast.ComprehensionKind))) > 0 {
		// Only a comprehension (all, exists, map, filter) can run long;
		// cost tracking costs several allocations per evaluation, so
		// other predicates go without it.
		popts = append(popts, cel.CostLimit(predicateCostLimit))
	}
	prg, err := c.env.Program(checked, popts...)
	if err != nil {
		c.fail(path, src, "", "predicate cannot be planned: %v", err)
		return nil
	}
	p := &predicate{rule: rule, src: src, prg: prg, stats: c.stats}
	if indexed {
		return limiter.Indexed(d, v, p)
	}
	return p
}

// indexKey finds an equality of a dimension and a non-empty string
// literal: the whole expression (whole is true) or one operand of a
// top-level conjunction.
func (c *compiler) indexKey(a *ast.AST) (d dimensions.Dimension, v string, whole, ok bool) {
	e := a.Expr()
	if d, v, ok := c.equality(a, e); ok {
		return d, v, true, true
	}
	var conj []ast.Expr
	var flatten func(ast.Expr)
	flatten = func(e ast.Expr) {
		if e.Kind() == ast.CallKind && e.AsCall().FunctionName() == "_&&_" {
			for _, arg := range e.AsCall().Args() {
				flatten(arg)
			}
			return
		}
		conj = append(conj, e)
	}
	flatten(e)
	if len(conj) < 2 {
		return "", "", false, false
	}
	for _, x := range conj {
		if d, v, ok := c.equality(a, x); ok {
			return d, v, false, true
		}
	}
	return "", "", false, false
}

func (c *compiler) equality(a *ast.AST, e ast.Expr) (dimensions.Dimension, string, bool) {
	if e.Kind() != ast.CallKind || e.AsCall().FunctionName() != "_==_" || len(e.AsCall().Args()) != 2 {
		return "", "", false
	}
	args := e.AsCall().Args()
	for i := range 2 {
		ref, lit := args[i], args[1-i]
		info, isRef := a.ReferenceMap()[ref.ID()]
		if !isRef || info.Value != nil || lit.Kind() != ast.LiteralKind {
			continue
		}
		s, isStr := lit.AsLiteral().(types.String)
		attr, isReq := strings.CutPrefix(info.Name, "request.")
		if !isStr || s == "" || !isReq || !c.dims[attr] {
			continue
		}
		return dimensions.Dimension(attr), string(s), true
	}
	return "", "", false
}

var varRef = regexp.MustCompile(`\b(request|auth)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)`)

// suggestPredicate returns src with misspelt variables corrected, or "".
func (c *compiler) suggestPredicate(src string) string {
	var fields []string // the x of every request.x
	for _, n := range c.varNames {
		if f, ok := strings.CutPrefix(n, "request."); ok {
			fields = append(fields, f)
		}
	}
	changed := false
	out := varRef.ReplaceAllStringFunc(src, func(m string) string {
		parts := strings.Split(m, ".")
		switch parts[0] {
		case "auth":
			if parts[1] == "identity" {
				return m
			}
			changed = true
			if closest(parts[1], []string{"identity"}) == "identity" {
				parts[1] = "identity" // auth.identty.x
			} else {
				parts = slices.Insert(parts, 1, "identity") // auth.userid
			}
		default:
			if slices.Contains(fields, parts[1]) {
				return m
			}
			s := closest(parts[1], fields)
			if s == "" {
				return m
			}
			changed = true
			parts[1] = s
		}
		return strings.Join(parts, ".")
	})
	if !changed {
		return ""
	}
	return out
}
