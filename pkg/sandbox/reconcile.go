package sandbox

import (
	"context"
	"errors"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Reconcile removes every managed container of this server id that no
// session or spare of this Manager owns: the leftovers of a crashed or
// killed server. New runs it before the Manager is used, and maintenance
// on every round. Containers without pyide.managed=true, and those of
// another server id (another installation, or a parallel test, sharing
// the engine), are never touched.
func (m *Manager) Reconcile(ctx context.Context) (int, error) {
	return m.removeUnowned(ctx, func(container.Summary) bool { return true })
}

func (m *Manager) removeUnowned(ctx context.Context, match func(container.Summary) bool) (int, error) {
	items, err := m.listManaged(ctx, false)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for _, c := range items {
		if c.Labels[LabelManaged] != "true" || !match(c) {
			continue
		}
		m.mu.Lock()
		owned := m.owned[c.Labels[LabelSession]]
		m.mu.Unlock()
		if owned {
			continue
		}
		removed, err := m.removeIfPresent(ctx, c.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !removed {
			continue
		}
		m.log.Info("sandbox: removed unowned container", "container", c.ID[:12], "user", c.Labels[LabelUser])
		n++
	}
	return n, errors.Join(errs...)
}

func (m *Manager) listManaged(ctx context.Context, allServers bool) ([]container.Summary, error) {
	f := make(client.Filters).Add("label", LabelManaged+"=true")
	if !allServers {
		f.Add("label", LabelServer+"="+m.opts.ServerID)
	}
	ctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	res, err := m.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, err
	}
	return res.Items, nil
}
