// Package hostiletest holds the hostile-input and cardinality tests of
// issue 9: a flood of keys against the memory store's cap, the number of
// metric attribute sets under that flood, and huge request bodies through
// httplimit in LLM mode. It has no code of its own; the tests are in its
// _test.go files. Long variants run with TOLLGATE_LONG=1.
package hostiletest
