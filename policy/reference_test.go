package policy

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReferenceMatchesSchema checks REFERENCE.md against the schema: each
// object of the schema has a section, whose table lists every field the
// object has and no other.
func TestReferenceMatchesSchema(t *testing.T) {
	f, err := os.Open("REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	section := regexp.MustCompile("^Schema: `#(?:/\\$defs/([a-z_]+))?`$")
	row := regexp.MustCompile("^\\| `([^`]+)` \\|")
	documented := map[string][]string{}
	current := "-"
	inFields := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "# Fields" {
			inFields = true
		}
		if !inFields {
			continue
		}
		if m := section.FindStringSubmatch(line); m != nil {
			current = m[1]
			if _, dup := documented[current]; dup {
				t.Errorf("two sections for %q", current)
			}
			documented[current] = nil
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil {
			if current == "-" {
				t.Errorf("field %q outside a section", m[1])
				continue
			}
			documented[current] = append(documented[current], m[1])
		}
	}
	schema := schemaFields()
	for def, fields := range schema {
		got, ok := documented[def]
		if !ok {
			t.Errorf("REFERENCE.md has no section for schema object %q", "#/$defs/"+def)
			continue
		}
		for _, f := range fields {
			if !slices.Contains(got, f) {
				t.Errorf("section %q: field %q is in the schema but not documented", def, f)
			}
		}
		for _, f := range got {
			if !slices.Contains(fields, f) {
				t.Errorf("section %q: documented field %q is not in the schema", def, f)
			}
		}
	}
	for def := range documented {
		if _, ok := schema[def]; !ok {
			t.Errorf("REFERENCE.md documents %q, which the schema does not have", def)
		}
	}
	if len(documented) < 7 || strings.Contains(strings.Join(documented[""], " "), "-") {
		t.Errorf("parsed sections: %v", documented)
	}
}
