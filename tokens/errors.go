package tokens

import "errors"

var (
	// ErrMalformedRequest means a request body is not a JSON object.
	ErrMalformedRequest = errors.New("tokens: malformed request body")
	// ErrMalformedPayload means an MCP or A2A payload is neither JSON-RPC
	// JSON nor an SSE stream of it.
	ErrMalformedPayload = errors.New("tokens: malformed MCP/A2A payload")
	// ErrBodyTooLarge means a request body is longer than the read limit
	// and the caller chose to reject such bodies.
	ErrBodyTooLarge = errors.New("tokens: request body over the read limit")
	// ErrUnknownModel means a model is not in the price table, under its
	// own name, an alias, or its name without a date suffix.
	ErrUnknownModel = errors.New("tokens: unknown model")
	// ErrInvalidPrice means a price table entry is negative, has more than
	// six decimals, or is out of range.
	ErrInvalidPrice = errors.New("tokens: invalid price")
)
