package publish

import (
	"context"

	"github.com/cartona/deploy/manifest"
)

// UpdatePointer lets the external tests drive updatePointer.
func (p *Publisher) UpdatePointer(ctx context.Context, app, channel string, edit Edit) (*manifest.Latest, bool, error) {
	return p.updatePointer(ctx, app, channel, edit)
}
