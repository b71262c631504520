package tokens_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/tollgate-go/tollgate/tokens"
)

func ExampleMeter() {
	stream := "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":19,\"completion_tokens\":9,\"total_tokens\":28}}\n\n" +
		"data: [DONE]\n\n"
	m := tokens.NewMeter(tokens.WithContentType("text/event-stream"))
	var client strings.Builder
	io.Copy(io.MultiWriter(&client, m), strings.NewReader(stream))
	u, ok := m.Usage()
	fmt.Println(ok, u.Input, u.Output, u.Total)
	// Output: true 19 9 28
}

func ExampleEstimateRequest() {
	body := `{"model":"gpt-4o","max_completion_tokens":300,"messages":[{"role":"user","content":"How many tokens is this?"}]}`
	r, err := tokens.EstimateRequest("/v1/chat/completions", []byte(body), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Model, r.Input, r.MaxOutput)
	// Output: gpt-4o 6 300
}

func ExamplePriceTable_Cost() {
	pt, err := tokens.LoadPriceTable(strings.NewReader(`{"currency":"USD","models":{"gpt-4o":{"input":2.5,"cached_input":1.25,"output":10}}}`))
	if err != nil {
		panic(err)
	}
	micros, err := pt.Cost("gpt-4o-2024-08-06", tokens.Usage{Input: 1200, CachedInput: 1000, Output: 300})
	fmt.Println(micros, err)
	_, err = pt.Cost("gpt-5", tokens.Usage{Input: 1})
	fmt.Println(err)
	// Output:
	// 4750 <nil>
	// tokens: unknown model "gpt-5"
}
