package cli

import (
	"context"

	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/publish/cloudfront"
)

// invalidator purges paths from the CloudFront distribution, with
// credentials from the AWS SDK's default chain.
func invalidator(ctx context.Context, distribution string) (publish.Invalidator, error) {
	cfg, err := awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	return cloudfront.New(cfg, distribution), nil
}
