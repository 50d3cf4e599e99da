package worker

import (
	"errors"
	"testing"

	"github.com/sluicelb/sluice/runtimeapi"
)

// A change for a proxy this process does not run is told apart from a
// refused one: the master sends every change to every process.
func TestApplyElsewhere(t *testing.T) {
	g := &generation{}
	maxConn := 10
	for _, c := range []runtimeapi.Change{
		{Backend: "app", Server: "s1"},
		{Frontend: "web", MaxConnFrontend: &maxConn},
	} {
		if err := g.apply(c); !errors.Is(err, errNotHere) {
			t.Errorf("change %+v: %v, want errNotHere", c, err)
		}
	}
}
