package tiktoken_test

import (
	"fmt"

	"github.com/tollgate-go/tollgate/tokens"
	"github.com/tollgate-go/tollgate/tokens/tiktoken"
)

func ExampleNew() {
	c, err := tiktoken.New(tiktoken.ForModel("gpt-4o-mini"))
	if err != nil {
		panic(err)
	}
	fmt.Println(c.Encoding(), c.CountTokens("Our gateway allows 200k tokens per minute."))
	r, err := tokens.EstimateRequest("/v1/chat/completions",
		[]byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"<|endoftext|> is just text"}]}`), c)
	fmt.Println(r.Input, err)
	// Output:
	// o200k_base 10
	// 10 <nil>
}
