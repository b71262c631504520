package limiter

import "github.com/tollgate-go/tollgate/dimensions"

// Request is what the limiter knows about one request: its dimensions and,
// for token and cost rules, an estimate of what it will use.
type Request struct {
	dimensions.Facts
	// Estimate is what token and cost rules reserve at check time:
	// the input tokens, the maximum output tokens, and the cost in
	// micro-units. Zero for plain request limiting.
	Estimate Usage
	// Header holds request headers for predicates (http.Header fits).
	Header map[string][]string
	// Identity holds the caller's identity claims for predicates.
	Identity map[string]any
}

// Usage is an amount of tokens and money.
type Usage struct {
	// InputTokens and OutputTokens are token counts.
	InputTokens, OutputTokens int64
	// Cost is money in integer micro-units of a currency.
	Cost int64
}

// amount returns what a rule of unit u counts in usage x.
func (x Usage) amount(u Unit) int64 {
	switch u {
	case Tokens:
		return x.InputTokens + x.OutputTokens
	case InputTokens:
		return x.InputTokens
	case OutputTokens:
		return x.OutputTokens
	case Cost:
		return x.Cost
	}
	return 1
}
