package admin_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/middleware/admin"
	"github.com/tollgate-go/tollgate/policy"
	"github.com/tollgate-go/tollgate/store/memory"
)

func ExampleNew() {
	lim, _ := limiter.New(memory.New(), nil)
	reloader := policy.NewReloader(lim)
	reloader.Apply([]byte("version: 1\nrules:\n  - {name: per-user, limit: 100/h, by: [user]}\n"))
	h, err := admin.New(lim, admin.BearerToken("s3cret"), admin.WithReloader(reloader))
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(http.StripPrefix("/admin", h))
	defer srv.Close()

	call := func(method, path, body string) {
		req, _ := http.NewRequest(method, srv.URL+"/admin"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Print(resp.StatusCode, " ", string(b))
	}
	call("PUT", "/rules/per-user/mode", `{"mode": "shadow"}`)
	call("PUT", "/rules", "version: 1\nrules:\n  - {name: x, limit: 60/hour}\n")
	// Output:
	// 200 {"name":"per-user","algorithm":"token_bucket","limit":100,"period":"1h0m0s","unit":"requests","by":["user"],"mode":"shadow","timing":"before","on_store_error":"default","predicate":false,"guard":false}
	// 422 {"type":"about:blank","title":"Unprocessable Entity","status":422,"detail":"the policy document was refused; the rules in force did not change","errors":[{"path":"/rules/0/limit","message":"\"60/hour\" is not a rate","value":"60/hour","suggestion":"60/h"}]}
}
