package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tollgate-go/tollgate/limiter"
)

// Reasons a guard rule rejects a request; a *GuardError wraps one of them,
// so errors.Is(d.Limiting.Err, policy.ErrModelNotAllowed) works on a
// limiter decision.
var (
	// ErrModelNotAllowed: the request's model is not in the rule's
	// allow_models.
	ErrModelNotAllowed = errors.New("policy: model not allowed")
	// ErrModelDenied: the request's model is in the rule's deny_models.
	ErrModelDenied = errors.New("policy: model denied")
	// ErrInputTokensOverCap: the request's input tokens
	// (Estimate.InputTokens) exceed the rule's max_input_tokens.
	ErrInputTokensOverCap = errors.New("policy: input tokens over the per-request cap")
	// ErrOutputTokensOverCap: the request's maximum output tokens
	// (Estimate.OutputTokens) exceed the rule's max_output_tokens.
	ErrOutputTokensOverCap = errors.New("policy: output tokens over the per-request cap")
)

// GuardError is the error a guard rule puts in limiter.RuleResult.Err
// when it rejects a request. Guards return preallocated GuardErrors, so a
// rejection does not allocate; do not modify them.
type GuardError struct {
	// Rule is the name of the guard rule.
	Rule string
	// Reason is one of ErrModelNotAllowed, ErrModelDenied,
	// ErrInputTokensOverCap or ErrOutputTokensOverCap.
	Reason error
	// Cap is the rule's cap in tokens, for the two cap reasons; else 0.
	Cap int64
}

// Error returns, for example, `policy: rule "team-a-models": model not allowed`.
func (e *GuardError) Error() string {
	msg := strings.TrimPrefix(e.Reason.Error(), "policy: ")
	if e.Cap > 0 {
		msg = fmt.Sprintf("%s of %d", msg, e.Cap)
	}
	return fmt.Sprintf("policy: rule %q: %s", e.Rule, msg)
}

// Unwrap returns Reason.
func (e *GuardError) Unwrap() error { return e.Reason }

// StatusCode is the HTTP status an adapter answers the rejection with
// (httplimit reads it): 403 Forbidden for a model the caller may not use,
// 400 Bad Request for a request over a per-request cap.
func (e *GuardError) StatusCode() int {
	if errors.Is(e.Reason, ErrModelNotAllowed) || errors.Is(e.Reason, ErrModelDenied) {
		return 403
	}
	return 400
}

// guard is a compiled guard rule.
type guard struct {
	allow, deny           modelSet
	hasAllow              bool
	maxInput, maxOutput   int64
	notAllowed, denied    *GuardError
	inputOver, outputOver *GuardError
}

func newGuard(name string, allow, deny []string, maxIn, maxOut int64) *guard {
	return &guard{
		allow: newModelSet(allow), deny: newModelSet(deny), hasAllow: allow != nil,
		maxInput: maxIn, maxOutput: maxOut,
		notAllowed: &GuardError{Rule: name, Reason: ErrModelNotAllowed},
		denied:     &GuardError{Rule: name, Reason: ErrModelDenied},
		inputOver:  &GuardError{Rule: name, Reason: ErrInputTokensOverCap, Cap: maxIn},
		outputOver: &GuardError{Rule: name, Reason: ErrOutputTokensOverCap, Cap: maxOut},
	}
}

// check is the limiter.Rule Guard. A request that names no model passes
// the model lists: they restrict which models may be called, and such a
// request calls none.
func (g *guard) check(r *limiter.Request) error {
	if m := r.Model; m != "" {
		if g.deny.has(m) {
			return g.denied
		}
		if g.hasAllow && !g.allow.has(m) {
			return g.notAllowed
		}
	}
	if g.maxInput > 0 && r.Estimate.InputTokens > g.maxInput {
		return g.inputOver
	}
	if g.maxOutput > 0 && r.Estimate.OutputTokens > g.maxOutput {
		return g.outputOver
	}
	return nil
}

// modelSet holds model names; an entry ending in "*" matches every model
// that starts with what precedes it ("gpt-4o*").
type modelSet struct {
	exact    map[string]bool
	prefixes []string
}

func newModelSet(models []string) modelSet {
	s := modelSet{exact: map[string]bool{}}
	for _, m := range models {
		if p, ok := strings.CutSuffix(m, "*"); ok {
			s.prefixes = append(s.prefixes, p)
			continue
		}
		s.exact[m] = true
	}
	return s
}

func (s *modelSet) has(m string) bool {
	if s.exact[m] {
		return true
	}
	for _, p := range s.prefixes {
		if strings.HasPrefix(m, p) {
			return true
		}
	}
	return false
}
