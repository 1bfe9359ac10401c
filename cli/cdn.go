package cli

import (
	"context"
	"errors"

	"github.com/cartona/deploy/publish"
)

func invalidator(ctx context.Context, distribution string) (publish.Invalidator, error) {
	return nil, errors.New("cloudfront: pending")
}
