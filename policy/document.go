package policy

import "encoding/json"

// The document as decoded after schema validation. Optional settings are
// pointers, so that "not set" and "set to the zero value" differ: that is
// what defaults and overrides need.

type document struct {
	Schema     string     `json:"$schema"`
	Version    int        `json:"version"`
	Attributes []string   `json:"attributes"`
	Defaults   *settings  `json:"defaults"`
	Overrides  *settings  `json:"overrides"`
	Models     []modelDoc `json:"models"`
	Rules      []ruleDoc  `json:"rules"`
	Groups     []groupDoc `json:"groups"`
	Prices     *pricesDoc `json:"prices"`
}

type pricesDoc struct {
	Currency string              `json:"currency"`
	Models   map[string]priceDoc `json:"models"`
}

type priceDoc struct {
	Input       json.RawMessage `json:"input"`
	CachedInput json.RawMessage `json:"cached_input,omitempty"`
	Output      json.RawMessage `json:"output"`
	Aliases     []string        `json:"aliases,omitempty"`
}

// settings are the fields defaults and overrides may set.
type settings struct {
	Algorithm    *string    `json:"algorithm"`
	Mode         *string    `json:"mode"`
	OnStoreError *string    `json:"on_store_error"`
	By           *[]string  `json:"by"`
	Timezone     *string    `json:"timezone"`
	Reject       *rejectDoc `json:"reject"`
}

type rejectDoc struct {
	Status      int               `json:"status"`
	Body        *string           `json:"body"`
	ContentType string            `json:"content_type"`
	Headers     map[string]string `json:"headers"`
}

type ruleDoc struct {
	Name            string          `json:"name"`
	Description     string          `json:"description"`
	When            string          `json:"when"`
	Limit           json.RawMessage `json:"limit"`
	Calendar        string          `json:"calendar"`
	Timezone        *string         `json:"timezone"`
	Algorithm       *string         `json:"algorithm"`
	Burst           *int64          `json:"burst"`
	Unit            string          `json:"unit"`
	By              *[]string       `json:"by"`
	Mode            *string         `json:"mode"`
	Timing          string          `json:"timing"`
	OnStoreError    *string         `json:"on_store_error"`
	Reject          *rejectDoc      `json:"reject"`
	Parent          string          `json:"parent"`
	Share           *json.Number    `json:"share"`
	AllowModels     []string        `json:"allow_models"`
	DenyModels      []string        `json:"deny_models"`
	MaxInputTokens  *int64          `json:"max_input_tokens"`
	MaxOutputTokens *int64          `json:"max_output_tokens"`
	Thresholds      []float64       `json:"thresholds"`
}

// own returns the settings the rule sets itself.
func (r *ruleDoc) own() *settings {
	return &settings{Algorithm: r.Algorithm, Mode: r.Mode, OnStoreError: r.OnStoreError, By: r.By, Timezone: r.Timezone, Reject: r.Reject}
}

func (r *ruleDoc) isGuard() bool {
	return r.AllowModels != nil || r.DenyModels != nil || r.MaxInputTokens != nil || r.MaxOutputTokens != nil
}

type groupDoc struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	When        string    `json:"when"`
	Defaults    *settings `json:"defaults"`
	Overrides   *settings `json:"overrides"`
	Rules       []ruleDoc `json:"rules"`
}

type modelDoc struct {
	Model     string           `json:"model"`
	RateLimit map[string]int64 `json:"rate_limit"`
}
