package policy

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/tollgate-go/tollgate/tokens"
)

var plainDecimal = regexp.MustCompile(`^(0|[1-9][0-9]{0,9})(\.[0-9]{1,6})?$`)

// compilePrices builds the document's price table with tokens.LoadPriceTable,
// which reads the same shape.
func (c *compiler) compilePrices(doc *pricesDoc) *tokens.PriceTable {
	if doc == nil {
		return nil
	}
	names := make([]string, 0, len(doc.Models))
	for name := range doc.Models {
		names = append(names, name)
	}
	slices.Sort(names)
	ok := true
	seen := map[string]string{}
	for _, name := range names {
		m := doc.Models[name]
		mp := pointer("/prices/models", name)
		for _, f := range []struct {
			field string
			raw   json.RawMessage
		}{{"input", m.Input}, {"cached_input", m.CachedInput}, {"output", m.Output}} {
			if f.raw == nil {
				continue
			}
			text := strings.Trim(string(bytes.TrimSpace(f.raw)), `"`)
			if !plainDecimal.MatchString(text) {
				if !covered(c.p.list[:c.nSchema], mp+"/"+f.field) {
					c.p.addErr(priceError(mp+"/"+f.field, text))
				}
				ok = false
			}
		}
		for i, a := range append([]string{name}, m.Aliases...) {
			k := strings.ToLower(a)
			if prev, dup := seen[k]; dup {
				path := mp
				if i > 0 {
					path = pointer(mp+"/aliases", i-1)
				}
				c.fail(path, a, "", "%q already names a price (of %q)", a, prev)
				ok = false
			}
			seen[k] = name
		}
	}
	if !ok {
		return nil
	}
	js, err := json.Marshal(doc)
	if err == nil {
		var t *tokens.PriceTable
		if t, err = tokens.LoadPriceTable(bytes.NewReader(js)); err == nil {
			return t
		}
	}
	c.fail("/prices", nil, "", "%s", strings.TrimPrefix(err.Error(), "tokens: "))
	return nil
}
