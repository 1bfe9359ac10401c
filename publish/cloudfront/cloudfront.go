// Package cloudfront invalidates paths cached by an Amazon CloudFront
// distribution, so that a changed channel pointer (latest.json) reaches
// devices before its cache lifetime runs out.
package cloudfront

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
)

// Invalidator creates invalidations on one distribution.
type Invalidator struct {
	client         *cloudfront.Client
	distributionID string
}

// New returns an Invalidator for the distribution, using cfg's credentials.
// CloudFront is a global service: an empty cfg.Region means us-east-1.
// Options adjust the client; tests set BaseEndpoint to a local server:
//
//	cloudfront.New(cfg, id, func(o *cloudfront.Options) { o.BaseEndpoint = aws.String(url) })
func New(cfg aws.Config, distributionID string, optFns ...func(*cloudfront.Options)) *Invalidator {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	return &Invalidator{
		client:         cloudfront.NewFromConfig(cfg, optFns...),
		distributionID: distributionID,
	}
}

// Invalidate asks CloudFront to drop its cached copies of paths, such as
// "/apps/retailer/channels/production/latest.json" (a leading slash is
// added if missing; "*" at the end matches a prefix). It returns once
// CloudFront has accepted the request, not when the invalidation is done.
// No paths is a no-op.
func (inv *Invalidator) Invalidate(ctx context.Context, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if inv.distributionID == "" {
		return errors.New("cloudfront: no distribution ID; set the CloudFront distribution to invalidate")
	}
	items := make([]string, len(paths))
	for i, p := range paths {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		items[i] = p
	}
	// A fresh CallerReference per call; the SDK's retries of this request
	// reuse it, and CloudFront treats them as one invalidation.
	ref := fmt.Sprintf("deploy-%s-%s", time.Now().UTC().Format("20060102T150405Z"), rand.Text())
	_, err := inv.client.CreateInvalidation(ctx, &cloudfront.CreateInvalidationInput{
		DistributionId: aws.String(inv.distributionID),
		InvalidationBatch: &types.InvalidationBatch{
			CallerReference: aws.String(ref),
			Paths:           &types.Paths{Quantity: aws.Int32(int32(len(items))), Items: items},
		},
	})
	if err != nil {
		return fmt.Errorf("cloudfront: invalidate %s on distribution %s: %w", describe(items), inv.distributionID, err)
	}
	return nil
}

// describe names the paths in an error: the path itself, or how many.
func describe(paths []string) string {
	if len(paths) == 1 {
		return paths[0]
	}
	return fmt.Sprintf("%d paths", len(paths))
}
