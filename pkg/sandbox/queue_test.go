package sandbox

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestQueueFIFO(t *testing.T) {
	t.Parallel()
	q := newQueue(1)
	if err := q.acquire(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	type ev struct {
		who string
		pos int
	}
	events := make(chan ev, 100)
	granted := make(chan string, 3)
	cctx, cancel := context.WithCancel(context.Background())
	enqueue := func(ctx context.Context, who string) {
		go func() {
			err := q.acquire(ctx, func(p int) { events <- ev{who, p} })
			if err != nil {
				granted <- who + " left"
				return
			}
			granted <- who
		}()
	}
	wantPos := func(who string, pos int) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case e := <-events:
				if e.who == who && e.pos == pos {
					return
				}
			case <-deadline:
				t.Fatalf("%s never reported position %d", who, pos)
			}
		}
	}
	enqueue(context.Background(), "a")
	wantPos("a", 1)
	enqueue(cctx, "b")
	wantPos("b", 2)
	enqueue(context.Background(), "c")
	wantPos("c", 3)
	cancel() // b leaves the line; c moves up
	if g := <-granted; g != "b left" {
		t.Fatalf("got %q, want b to leave", g)
	}
	wantPos("c", 2)
	q.release()
	if g := <-granted; g != "a" {
		t.Fatalf("first granted %q, want a", g)
	}
	wantPos("c", 1)
	q.release()
	if g := <-granted; g != "c" {
		t.Fatalf("then %q, want c", g)
	}
	if r, w := q.stats(); r != 1 || w != 0 {
		t.Errorf("running %d waiting %d, want 1 and 0", r, w)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if err := q.acquire(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("acquire on a full queue = %v", err)
	}
}

func TestStripEcho(t *testing.T) {
	t.Parallel()
	echo := "{\"file\":null}\r\n"
	tests := []struct {
		name   string
		chunks []string
		want   string
	}{
		{"no echo", []string{">>> "}, ">>> "},
		{"echo then output", []string{echo + "hi\r\n"}, "hi\r\n"},
		{"echo split", []string{"{\"fi", "le\":null}\r", "\nhi"}, "hi"},
		{"prefix but not echo", []string{"{\"fi", "sh\"}"}, "{\"fish\"}"},
		{"only echo", []string{echo, ">>> "}, ">>> "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := &Session{echo: []byte(echo)}
			var got []byte
			for _, c := range tt.chunks {
				p := make([]byte, 64)
				n := copy(p, c)
				n = s.stripEcho(p, n)
				got = append(got, p[:n]...)
				got = append(got, s.pend...)
				s.pend = nil
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
