package throttle

import (
	"testing"
	"time"
)

func TestFailures(t *testing.T) {
	var f Failures
	t0 := time.Unix(1000, 0)
	if _, ok := f.OK(t0); ok {
		t.Fatal("a success with no failure before wants a line")
	}
	if l, ok := f.Fail(t0, 3); !ok || !l.First || l.Items != 3 {
		t.Fatalf("first failure: %+v %v, want a first line", l, ok)
	}
	for i := 1; i < 10; i++ { // 9 s: no line
		if l, ok := f.Fail(t0.Add(time.Duration(i)*time.Second), 2); ok {
			t.Fatalf("failure %d within the interval: %+v, want no line", i, l)
		}
	}
	l, ok := f.Fail(t0.Add(10*time.Second), 2)
	if !ok || l.First || l.Count != 10 || l.Items != 20 || l.For != 10*time.Second {
		t.Fatalf("failure at 10 s: %+v %v, want a summary of 10 failures, 20 items", l, ok)
	}
	f.Fail(t0.Add(11*time.Second), 1)
	l, ok = f.OK(t0.Add(12 * time.Second))
	if !ok || !l.Recovered || l.Count != 1 || l.For != 12*time.Second {
		t.Fatalf("recovery: %+v %v", l, ok)
	}
	if l, ok := f.Fail(t0.Add(13*time.Second), 1); !ok || !l.First {
		t.Fatalf("a failure after recovery: %+v %v, want a first line again", l, ok)
	}
}
