// Package s3 is the store.Store backend for AWS S3 and S3-compatible
// stores (Cloudflare R2, MinIO, versitygw).
//
// # URL
//
// A store is named by a URL:
//
//	s3://bucket/prefix?region=eu-west-1
//	s3://bucket/prefix?region=us-east-1&endpoint=http://127.0.0.1:7070&path_style=true
//
// Every key lives under prefix. The query parameters are region (else the
// SDK's configured region), endpoint (the base URL of a non-AWS store) and
// path_style (true to address the bucket in the path rather than the host
// name). Credentials come from the AWS SDK's default chain: the
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment variables, a
// shared profile, or an instance role.
//
// # Conditional writes
//
// Create-only writes send If-None-Match: * and compare-and-swap writes send
// If-Match, so the store itself settles races between publishers. Objects
// larger than 16 MiB, or of unknown size, are uploaded in parts, and the
// condition is checked when the upload completes (CompleteMultipartUpload).
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/cartona/deploy/store"
)

const (
	// Objects up to this size, when the caller gives it, go in one PutObject.
	multipartThreshold = 16 << 20
	// Larger objects go in parts of this size, this many at a time.
	partSize    = 8 << 20
	concurrency = 4
	// abortTimeout bounds aborting a failed multipart upload, which runs
	// after the caller's context may have ended.
	abortTimeout = 5 * time.Second
)

// Store is a store.Store in an S3 bucket, under a key prefix.
type Store struct {
	client   *s3.Client
	uploader *manager.Uploader
	bucket   string
	prefix   string // "" or ends with "/"
}

var (
	_ store.Store     = (*Store)(nil)
	_ store.Multipart = (*Store)(nil)
)

// Open returns the store named by an s3:// URL (see the package
// documentation). Configuration errors name the offending part of the URL.
// Open does not contact the store.
func Open(ctx context.Context, u *url.URL) (*Store, error) {
	if u.Scheme != "s3" {
		return nil, fmt.Errorf("s3 store: unsupported URL scheme %q; use s3://bucket/prefix", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("s3 store: missing bucket in %q; use s3://bucket/prefix", u.Redacted())
	}
	if u.User != nil {
		return nil, errors.New("s3 store: credentials in the URL are not supported; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use an AWS profile")
	}
	params, err := parseParams(u.RawQuery)
	if err != nil {
		return nil, err
	}
	region, endpoint, pathStyle := params.region, params.endpoint, params.pathStyle

	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 store: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		if endpoint == "" {
			return nil, fmt.Errorf("s3 store: no region for bucket %s; add ?region=... to the URL or set AWS_REGION", u.Host)
		}
		// Most S3-compatible stores accept any region, and us-east-1 is
		// the usual default.
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
			// Non-AWS stores often reject the SDK's default checksums
			// (trailing CRC headers on every upload).
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	return New(client, u.Host, u.Path), nil
}

// regionRE matches a region name: lowercase letters, digits and dashes, as
// AWS's (eu-west-1) and other S3 stores' (auto, garage) are.
var regionRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// params are the settings an s3:// URL's query may carry.
type params struct {
	region, endpoint string
	pathStyle        bool
}

// parseParams reads an s3:// URL's query, refusing unknown parameters.
func parseParams(rawQuery string) (params, error) {
	var p params
	query, err := url.ParseQuery(rawQuery)
	if err != nil {
		return p, fmt.Errorf("s3 store: bad URL query %q: %w", rawQuery, err)
	}
	for _, name := range slices.Sorted(maps.Keys(query)) {
		v := query.Get(name)
		switch name {
		case "region":
			if !regionRE.MatchString(v) {
				return p, fmt.Errorf("s3 store: region=%q is not an AWS region name; use, for example, region=eu-west-1", v)
			}
			p.region = v
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return p, fmt.Errorf("s3 store: endpoint=%q is not an http(s) URL; use, for example, endpoint=https://s3.example.com", v)
			}
			p.endpoint = strings.TrimSuffix(v, "/")
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return p, fmt.Errorf("s3 store: path_style=%q is not a boolean; use path_style=true or path_style=false", v)
			}
			p.pathStyle = b
		default:
			return p, fmt.Errorf("s3 store: unknown URL parameter %q; known parameters are region, endpoint and path_style", name)
		}
	}
	return p, nil
}

// New returns a store in bucket under prefix that uses client as is.
func New(client *s3.Client, bucket, prefix string) *Store {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	// manager.Uploader is marked deprecated in favour of the pre-1.0
	// feature/s3/transfermanager; it is stable and copies IfNoneMatch and
	// IfMatch to CompleteMultipartUpload, which is what conditional writes
	// of large objects need.
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.Concurrency = concurrency
		// Its own abort uses the upload's context, which is over when the
		// upload was cancelled: Put aborts instead (see abort).
		u.LeavePartsOnError = true
	})
	return &Store{client: client, uploader: uploader, bucket: bucket, prefix: prefix}
}

// Location returns s3://bucket/prefix/key.
func (s *Store) Location(key string) string {
	return "s3://" + s.bucket + "/" + s.prefix + key
}

// key returns the object key of a store key.
func (s *Store) key(key string) (string, error) {
	if err := store.CheckKey(key); err != nil {
		return "", fmt.Errorf("s3: %w", err)
	}
	return s.prefix + key, nil
}

// Get opens the object at key. A missing key wraps fs.ErrNotExist, a
// missing bucket store.ErrNoBucket.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, store.Info, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, store.Info{}, err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return nil, store.Info{}, fmt.Errorf("s3: get %s: %w", key, storeError(err))
	}
	info := store.Info{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    aws.ToString(out.ETag),
		ModTime: aws.ToTime(out.LastModified),
	}
	return out.Body, info, nil
}

// Stat returns the Info of key. A missing key wraps fs.ErrNotExist, a
// missing bucket store.ErrNoBucket; telling them apart costs a listing
// when the key is missing (see headNotFound).
func (s *Store) Stat(ctx context.Context, key string) (store.Info, error) {
	k, err := s.key(key)
	if err != nil {
		return store.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		err = storeError(err)
		if errors.Is(err, fs.ErrNotExist) {
			err = s.headNotFound(ctx, k, err)
		}
		return store.Info{}, fmt.Errorf("s3: stat %s: %w", key, err)
	}
	return store.Info{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    aws.ToString(out.ETag),
		ModTime: aws.ToTime(out.LastModified),
	}, nil
}

// Put streams r to key. S3 makes an object visible only once it is
// complete; a failed upload leaves nothing behind: an incomplete multipart
// upload is aborted, also when ctx is cancelled (see abort). Only a process
// killed mid-upload leaves one, which Uploads lists.
//
// A refused create-only write wraps fs.ErrExist; a refused compare-and-swap
// write, or one whose object was deleted, wraps store.ErrConflict. The
// returned Info has the key, size and ETag; its ModTime is zero.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opt store.PutOptions) (store.Info, error) {
	k, err := s.key(key)
	if err != nil {
		return store.Info{}, err
	}
	body := &countingReader{r: r}
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: &k, Body: body}
	if opt.ContentType != "" {
		in.ContentType = aws.String(opt.ContentType)
	}
	if opt.ContentEncoding != "" {
		in.ContentEncoding = aws.String(opt.ContentEncoding)
	}
	if opt.CacheControl != "" {
		in.CacheControl = aws.String(opt.CacheControl)
	}
	switch {
	case opt.CreateOnly:
		in.IfNoneMatch = aws.String("*")
	case opt.IfMatch != "":
		in.IfMatch = aws.String(opt.IfMatch)
	}

	// The uploader reads the first part: if the body ends within it, it
	// sends one PutObject, else a multipart upload whose parts it uploads
	// concurrently. A body of known size up to the threshold is one part.
	var small []func(*manager.Uploader)
	if opt.Size > 0 && opt.Size <= multipartThreshold {
		small = append(small, func(u *manager.Uploader) { u.PartSize = multipartThreshold })
	}
	out, err := s.uploader.Upload(ctx, in, small...)
	if err != nil {
		s.abort(ctx, key, err)
		return store.Info{}, fmt.Errorf("s3: put %s: %w", key, putError(err, opt))
	}
	return store.Info{Key: key, Size: body.n, ETag: aws.ToString(out.ETag)}, nil
}

// abort aborts the multipart upload to key that the failed upload err
// left, if any, so that its parts are not kept (and billed). The upload's
// context may be what failed it (Ctrl-C, SIGTERM, a deadline), so the
// abort gets a fresh one, bounded by abortTimeout. An abort that fails
// leaves the upload to `deploy prune` or the bucket's lifecycle rule.
func (s *Store) abort(ctx context.Context, key string, err error) {
	var failed manager.MultiUploadFailure
	if !errors.As(err, &failed) || failed.UploadID() == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	s.AbortUpload(ctx, store.Upload{Key: key, ID: failed.UploadID()})
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// List returns the objects whose keys start with prefix, sorted by key. Keys
// the store could not have written (see store.CheckKey), such as an
// S3-compatible server's temporary files, are left out.
func (s *Store) List(ctx context.Context, prefix string) ([]store.Info, error) {
	full := s.prefix + prefix
	var infos []store.Info
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &full})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list %s: %w", prefix, storeError(err))
		}
		for _, obj := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(obj.Key), s.prefix)
			if store.CheckKey(key) != nil {
				continue
			}
			infos = append(infos, store.Info{
				Key:     key,
				Size:    aws.ToInt64(obj.Size),
				ETag:    aws.ToString(obj.ETag),
				ModTime: aws.ToTime(obj.LastModified),
			})
		}
	}
	// S3 lists in byte order already; S3-compatible stores may not.
	slices.SortFunc(infos, func(a, b store.Info) int { return strings.Compare(a.Key, b.Key) })
	return infos, nil
}

// Delete removes key. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &k})
	if err = storeError(err); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("s3: delete %s: %w", key, err)
	}
	return nil
}

// Uploads lists the incomplete multipart uploads to keys that start with
// prefix, sorted by key, with the bytes of the parts each holds. An
// upload that completes or is aborted while they are listed is left out.
func (s *Store) Uploads(ctx context.Context, prefix string) ([]store.Upload, error) {
	full := s.prefix + prefix
	var ups []store.Upload
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &full})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3: list incomplete uploads %s: %w", prefix, storeError(err))
		}
		for _, u := range page.Uploads {
			key := strings.TrimPrefix(aws.ToString(u.Key), s.prefix)
			if store.CheckKey(key) != nil {
				continue
			}
			ups = append(ups, store.Upload{Key: key, ID: aws.ToString(u.UploadId), Started: aws.ToTime(u.Initiated)})
		}
	}
	kept := ups[:0]
	for _, u := range ups {
		size, err := s.partsSize(ctx, u)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		u.Size = size
		kept = append(kept, u)
	}
	slices.SortStableFunc(kept, func(a, b store.Upload) int { return strings.Compare(a.Key, b.Key) })
	return kept, nil
}

// partsSize adds up the sizes of an incomplete upload's parts. An upload
// that is gone wraps fs.ErrNotExist.
func (s *Store) partsSize(ctx context.Context, u store.Upload) (int64, error) {
	k := s.prefix + u.Key
	var size int64
	p := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{Bucket: &s.bucket, Key: &k, UploadId: &u.ID})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if code, _ := errorCode(err); code == "NoSuchUpload" {
			return 0, fmt.Errorf("s3: list parts of %s: %w: %w", u.Key, fs.ErrNotExist, err)
		}
		if err != nil {
			return 0, fmt.Errorf("s3: list parts of %s: %w", u.Key, storeError(err))
		}
		for _, part := range page.Parts {
			size += aws.ToInt64(part.Size)
		}
	}
	return size, nil
}

// AbortUpload aborts an incomplete multipart upload. One that is gone
// (completed or aborted) is not an error.
func (s *Store) AbortUpload(ctx context.Context, u store.Upload) error {
	k, err := s.key(u.Key)
	if err != nil {
		return err
	}
	_, err = s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &k, UploadId: &u.ID})
	if code, _ := errorCode(err); err != nil && code != "NoSuchUpload" {
		return fmt.Errorf("s3: abort the upload to %s: %w", u.Key, storeError(err))
	}
	return nil
}

// storeError adds to err's chain what the store's error contract names:
// store.ErrNoBucket for a missing bucket, fs.ErrNotExist for a missing key.
// A missing bucket has its own code (NoSuchBucket), except in answers to
// HEAD, which have no body: Stat tells the two apart (headNotFound).
func storeError(err error) error {
	if err == nil {
		return nil
	}
	switch code, status := errorCode(err); {
	case code == "NoSuchBucket":
		return fmt.Errorf("%w: %w", store.ErrNoBucket, err)
	case code == "NoSuchKey" || code == "NotFound" || (status == http.StatusNotFound && code == ""):
		return fmt.Errorf("%w: %w", fs.ErrNotExist, err)
	}
	return err
}

// headNotFound tells what a HEAD of object key answered 404 for, with
// err: HEAD answers a bare 404 for a missing key and for a missing
// bucket alike, so it lists key, which names a missing bucket, or
// credentials the store refused (versitygw answers a HEAD by an unknown
// user with a bare 404 too). When the listing fails otherwise (a role
// without s3:ListBucket), the key is taken as missing, as before the
// listing.
func (s *Store) headNotFound(ctx context.Context, key string, err error) error {
	_, lerr := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &key, MaxKeys: aws.Int32(1)})
	code, _ := errorCode(lerr)
	if lerr = storeError(lerr); errors.Is(lerr, store.ErrNoBucket) || refusedCredentials[code] {
		return lerr
	}
	return err
}

// refusedCredentials are the error codes of credentials a store refused.
var refusedCredentials = map[string]bool{
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true,
	"InvalidToken": true, "XAdminUserNotFound": true,
}

// putError maps a refused conditional write to fs.ErrExist or
// store.ErrConflict, and a missing bucket to store.ErrNoBucket.
func putError(err error, opt store.PutOptions) error {
	code, status := errorCode(err)
	// 412 when the condition fails; 409 when a concurrent conditional write
	// to the same key is in progress (AWS: ConditionalRequestConflict).
	refused := status == http.StatusPreconditionFailed || code == "PreconditionFailed" ||
		status == http.StatusConflict || code == "ConditionalRequestConflict"
	switch {
	case code == "NoSuchBucket":
		return storeError(err)
	case opt.CreateOnly && refused:
		return fmt.Errorf("%w: %w", fs.ErrExist, err)
	case opt.IfMatch != "" && (refused || code == "NoSuchKey"):
		// If-Match on a deleted object answers 404: the object changed.
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	return err
}

// errorCode returns the S3 error code and HTTP status of err, if any.
func errorCode(err error) (code string, status int) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		code = apiErr.ErrorCode()
	}
	var respErr *awshttp.ResponseError
	if errors.As(err, &respErr) {
		status = respErr.HTTPStatusCode()
	}
	return code, status
}
