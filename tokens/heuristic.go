package tokens

import (
	"unicode"
	"unicode/utf8"
)

// Estimator counts the tokens of a text. Implementations must be safe for
// concurrent use and must not panic on any input (special-token strings
// such as "<|endoftext|>" are ordinary text).
type Estimator interface {
	// CountTokens returns the number of tokens of text, at least 0.
	CountTokens(text string) int64
}

// Heuristic is the default Estimator: a tokenizer-free approximation of
// OpenAI's o200k_base BPE. It splits text the way o200k's pre-tokenizer does
// (words, camelCase pieces, 1-3 digit groups, punctuation runs, whitespace
// runs) and prices each piece from its length and script, calibrated
// against exact o200k counts. See the package documentation for its
// accuracy. It allocates nothing.
//
// The zero value is ready to use and safe for concurrent use.
type Heuristic struct{}

var _ Estimator = Heuristic{}

// Costs are in thousandths of a token.
const (
	costWord       = 1050 // a word piece up to wordFree letters
	wordFree       = 9    // letters a one-token word piece may have
	costWordExtra  = 300  // each letter past wordFree
	costDigitGroup = 1000 // a group of up to three digits
	costPunctExtra = 400  // each punctuation byte past punctFree
	costPunctRun   = 1000 // a punctuation run up to punctFree bytes
	punctFree      = 3
	costNewlines   = 1000 // a run of line breaks
	costSpaces     = 1000 // a run of two or more spaces or tabs
	costCJK        = 750  // a Han, Kana or Hangul character
	costOtherRune  = 1000 // another non-ASCII symbol
)

// CountTokens returns the estimated o200k_base token count of text.
func (Heuristic) CountTokens(text string) int64 {
	var milli int64
	n := len(text)
	for i := 0; i < n; {
		c := text[i]
		switch {
		case isASCIILetter(c) || (c >= utf8.RuneSelf && isWordRune(text, i)):
			// A word piece: Upper* lower+ or Upper+ (o200k splits camelCase).
			letters := 0
			seenLower := false
			for i < n {
				c = text[i]
				var upper, lower bool
				size := 1
				switch {
				case c >= 'a' && c <= 'z':
					lower = true
				case c >= 'A' && c <= 'Z':
					upper = true
				case c >= utf8.RuneSelf:
					r, sz := utf8.DecodeRuneInString(text[i:])
					if !unicode.IsLetter(r) || isCJK(r) {
						goto doneWord
					}
					size = sz
					upper = unicode.IsUpper(r)
					lower = !upper
				case c == '\'' && seenLower && i+1 < n && isASCIILetter(text[i+1]):
					lower = true // contractions: don't, it's
				default:
					goto doneWord
				}
				if upper && seenLower {
					break
				}
				if lower {
					seenLower = true
				}
				letters++
				i += size
			}
		doneWord:
			milli += costWord
			if letters > wordFree {
				milli += int64(letters-wordFree) * costWordExtra
			}
		case c >= '0' && c <= '9':
			digits := 0
			for i < n && text[i] >= '0' && text[i] <= '9' {
				digits++
				i++
			}
			milli += int64((digits+2)/3) * costDigitGroup
		case c == '\n' || c == '\r':
			for i < n && (text[i] == '\n' || text[i] == '\r') {
				i++
			}
			milli += costNewlines
		case c == ' ' || c == '\t':
			j := i
			for j < n && (text[j] == ' ' || text[j] == '\t') {
				j++
			}
			if j-i > 1 || (j < n && text[j] >= '0' && text[j] <= '9') {
				milli += costSpaces // o200k gives digits no leading space
			}
			i = j // a single space joins the next piece
		case c < utf8.RuneSelf:
			// A punctuation run. A lone mark before a word joins the word
			// (o200k's "_tokens", "(d"); repeated marks ("-----") merge well.
			run, repeats := 0, 0
			for i < n && text[i] < utf8.RuneSelf && isPunct(text[i]) {
				if run > 0 && text[i] == text[i-1] {
					repeats++
				}
				run++
				i++
			}
			if run == 1 && i < n && (isASCIILetter(text[i]) || (text[i] >= utf8.RuneSelf && isWordRune(text, i))) {
				break
			}
			milli += costPunctRun
			if eff := (run-repeats)*8 + repeats; eff > punctFree*8 {
				milli += int64(eff-punctFree*8) * costPunctExtra / 8
			}
		default:
			r, sz := utf8.DecodeRuneInString(text[i:])
			i += sz
			if isCJK(r) {
				milli += costCJK
			} else {
				milli += costOtherRune
			}
		}
	}
	// A BPE token holds at least one byte.
	return min((milli+500)/1000, int64(n))
}

func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

func isPunct(c byte) bool {
	return !isASCIILetter(c) && (c < '0' || c > '9') && c != ' ' && c != '\t' && c != '\n' && c != '\r'
}

func isWordRune(s string, i int) bool {
	r, _ := utf8.DecodeRuneInString(s[i:])
	return unicode.IsLetter(r) && !isCJK(r)
}

func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}
