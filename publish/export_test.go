package publish

import (
	"context"

	"github.com/cartona/deploy/manifest"
)

// UpdatePointer lets the external tests drive updatePointer, as an upload
// does: it may start the channel.
func (p *Publisher) UpdatePointer(ctx context.Context, app, channel string, edit Edit) (*manifest.Latest, bool, error) {
	return p.updatePointer(ctx, app, channel, edit, true)
}

// HoldBuild lets the external tests take a build's lease; release ends it.
func (p *Publisher) HoldBuild(ctx context.Context, app string, ref manifest.BuildRef) (release func(), err error) {
	l, err := p.holdBuild(ctx, app, ref)
	if err != nil {
		return nil, err
	}
	return func() { l.release(ctx) }, nil
}
