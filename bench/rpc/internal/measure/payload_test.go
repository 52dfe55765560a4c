package measure

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

// Two callers' payloads differ, and so do one caller's for two calls.
func TestPayloadsTellCallersAndCallsApart(t *testing.T) {
	a, b := Payload(1, 64), Payload(2, 64)
	if bytes.Equal(a, b) {
		t.Fatal("callers 1 and 2 have the same payload")
	}
	Stamp(a, 1)
	first := bytes.Clone(a)
	Stamp(a, 2)
	if bytes.Equal(a, first) {
		t.Fatal("calls 1 and 2 of one caller have the same payload")
	}
	if !bytes.Equal(a[16:], first[16:]) || !bytes.Equal(a[:8], first[:8]) {
		t.Fatal("Stamp changed more than the sequence number")
	}
}

// FirstError keeps the first error of many recorded at once, and ignores nil.
func TestFirstErrorKeepsOne(t *testing.T) {
	var f FirstError
	if f.Record(nil) != nil || f.Err() != nil {
		t.Fatal("a nil error was kept")
	}
	errs := []error{errors.New("a"), errors.New("b"), errors.New("c")}
	var wg sync.WaitGroup
	for _, e := range errs {
		wg.Go(func() {
			if got := f.Record(e); got != e {
				t.Errorf("Record returned %v, want its argument %v", got, e)
			}
		})
	}
	wg.Wait()
	if got := f.Err(); !errors.Is(got, errs[0]) && !errors.Is(got, errs[1]) && !errors.Is(got, errs[2]) {
		t.Fatalf("Err() = %v, want one of the recorded errors", got)
	}
}
