package admin

import (
	"encoding/json"
	"net/http"
)

// Problem is an error answer (RFC 9457), sent as application/problem+json.
type Problem struct {
	// Type is "about:blank": Title is the status text.
	Type string `json:"type"`
	// Title is the HTTP status text.
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail says what went wrong with this request.
	Detail string `json:"detail,omitempty"`
	// Errors lists the problems of a refused policy document, each with
	// the JSON pointer of the offending value.
	Errors []PolicyError `json:"errors,omitempty"`
}

// PolicyError is one problem of a refused policy document.
type PolicyError struct {
	// Path is the JSON pointer (RFC 6901) of the offending value; empty
	// for the whole document.
	Path string `json:"path"`
	// Message says what is wrong.
	Message string `json:"message"`
	// Value is the offending value, when there is one.
	Value any `json:"value,omitempty"`
	// Suggestion is the value the author probably meant, when known.
	Suggestion string `json:"suggestion,omitempty"`
}

func problem(w http.ResponseWriter, status int, detail string) {
	writeProblem(w, Problem{Status: status, Detail: detail})
}

func writeProblem(w http.ResponseWriter, p Problem) {
	p.Type = "about:blank"
	p.Title = http.StatusText(p.Status)
	b, err := json.Marshal(p)
	if err != nil {
		// A document value that does not marshal: drop the values.
		for i := range p.Errors {
			p.Errors[i].Value = nil
		}
		b, _ = json.Marshal(p)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem(w, http.StatusInternalServerError, "encoding the answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
