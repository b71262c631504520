package memory

import (
	"testing"

	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return New() })
}
