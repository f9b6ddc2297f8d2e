package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// The naive design: every click creates, attaches and starts a fresh
// container (what `docker run --rm` does), through the Engine API as the
// server does.
const baselineLabel = "pyide.load.baseline"

// BaselineResult is the naive design measured at the same N.
type BaselineResult struct {
	N      int            `json:"n"`
	Method string         `json:"method"`
	Click  Summary        `json:"click_to_first_output"`
	WallMS float64        `json:"wall_ms"` // all N clicks until the last first output
	Errors map[string]int `json:"errors"`
	Left   int            `json:"containers_left"` // removed by us afterwards
	hist   []Bucket
}

func runBaseline(ctx context.Context, cli *client.Client, image string, n int, tag string) BaselineResult {
	res := BaselineResult{N: n, Errors: map[string]int{},
		Method: "Engine API (moby/client): create + attach + start, AutoRemove; all N clicks at once; " +
			"--network none --memory 128m --memory-swap 128m --pids-limit 64 --read-only --tmpfs /tmp --cap-drop ALL --user 1000:1000; " +
			`python3 -c 'print("hi")'`}
	var (
		mu  sync.Mutex
		lat series
		wg  sync.WaitGroup
	)
	gate := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			d, err := naiveClick(ctx, cli, image, fmt.Sprintf("pyide-load-%s-%03d", tag, i), tag)
			if err != nil {
				mu.Lock()
				res.Errors[err.Error()]++
				mu.Unlock()
				return
			}
			lat.add(d)
		}()
	}
	t0 := time.Now()
	close(gate)
	wg.Wait()
	res.WallMS = ms(time.Since(t0))
	all := lat.snapshot()
	res.Click, res.hist = summarize(all), histogram(all, bucketEdges)
	res.Left = removeBaseline(cli, tag)
	return res
}

// naiveClick is one click of the naive design; its error is a short kind.
func naiveClick(ctx context.Context, cli *client.Client, image, name, tag string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	pids := int64(64)
	t0 := time.Now()
	cr, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image: image, User: "1000:1000", Tty: true, WorkingDir: "/tmp",
			Cmd:    []string{"python3", "-c", `print("hi")`},
			Labels: map[string]string{baselineLabel: tag},
		},
		HostConfig: &container.HostConfig{
			AutoRemove: true, NetworkMode: "none", ReadonlyRootfs: true,
			Tmpfs:       map[string]string{"/tmp": "size=16m"},
			CapDrop:     []string{"ALL"},
			SecurityOpt: []string{"no-new-privileges"},
			Resources:   container.Resources{Memory: 128 << 20, MemorySwap: 128 << 20, PidsLimit: &pids},
		},
	})
	if err != nil {
		return 0, errors.New("create")
	}
	att, err := cli.ContainerAttach(ctx, cr.ID, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return 0, errors.New("attach")
	}
	defer att.Close()
	if _, err := cli.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		return 0, errors.New("start")
	}
	one := make([]byte, 1)
	if _, err := io.ReadFull(att.Reader, one); err != nil {
		return 0, errors.New("no output")
	}
	d := time.Since(t0)
	_, _ = io.Copy(io.Discard, att.Reader) // until it exits (and removes itself)
	return d, nil
}

// removeBaseline waits for AutoRemove to finish, then removes any baseline
// container still there (a click that failed halfway) and says how many
// it had to remove.
func removeBaseline(cli *client.Client, tag string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := make(client.Filters).Add("label", baselineLabel+"="+tag)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			return -1
		}
		if len(res.Items) == 0 {
			return 0
		}
		if time.Now().After(deadline) {
			for _, c := range res.Items {
				_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
			return len(res.Items)
		}
		select {
		case <-ctx.Done():
			return len(res.Items)
		case <-time.After(250 * time.Millisecond):
		}
	}
}
