package s3_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cartona/deploy/internal/s3test"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/s3"
	"github.com/cartona/deploy/store/storetest"
)

// open returns a store in a fresh bucket of srv, opened by URL with the
// credentials from the environment, as the CLI does.
func open(t *testing.T, srv *s3test.Server, prefix string) *s3.Store {
	t.Helper()
	u, err := url.Parse(srv.URL(prefix))
	if err != nil {
		t.Fatal(err)
	}
	s, err := s3.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStore(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, srv.NewBucket(t), "some/prefix")
	})
}

func TestMetadata(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	s := open(t, srv, "p")
	ctx := context.Background()
	body := []byte(`{"v":1}`)
	for _, size := range []int64{int64(len(body)), -1} {
		key := fmt.Sprintf("apps/a/channels/production/latest-%d.json", size)
		info, err := s.Put(ctx, key, bytes.NewReader(body), store.PutOptions{
			Size:         size,
			ContentType:  "application/json",
			CacheControl: "public, max-age=60",
		})
		if err != nil {
			t.Fatal(err)
		}
		if info.Key != key || info.Size != int64(len(body)) || info.ETag == "" {
			t.Fatalf("Put = %+v", info)
		}
		head := headObject(t, srv, "p/"+key)
		if got := aws.ToString(head.ContentType); got != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", got)
		}
		if got := aws.ToString(head.CacheControl); got != "public, max-age=60" {
			t.Errorf("Cache-Control = %q, want public, max-age=60", got)
		}
		if got := aws.ToString(head.ETag); got != info.ETag {
			t.Errorf("HeadObject ETag = %s, Put returned %s", got, info.ETag)
		}
	}

	// A gzip-encoded object: S3 and a CDN send it with its encoding, so an
	// HTTP client decodes it; the store's Get returns the bytes as stored.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(body)
	zw.Close()
	const key = "apps/a/files/manifests/m.json"
	if _, err := s.Put(ctx, key, bytes.NewReader(gz.Bytes()), store.PutOptions{Size: int64(gz.Len()), ContentType: "application/json", ContentEncoding: "gzip"}); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(headObject(t, srv, "p/"+key).ContentEncoding); got != "gzip" {
		t.Errorf("Content-Encoding = %q, want gzip", got)
	}
	if got, _, err := store.ReadSmall(ctx, s, key, 1<<20); err != nil || !bytes.Equal(got, gz.Bytes()) {
		t.Errorf("Get of a gzip-encoded object = %q, %v; want the stored gzip bytes", got, err)
	}
	if got, want := s.Location("apps/a/x.json"), "s3://"+srv.Bucket+"/p/apps/a/x.json"; got != want {
		t.Errorf("Location = %s, want %s", got, want)
	}
}

// TestMultipart uploads 40 MiB in parts and checks the bytes, the metadata
// and the conditions, which S3 checks when the upload completes.
func TestMultipart(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	s := open(t, srv, "")
	ctx := context.Background()
	const size = 40 << 20
	const key = "apps/a/bundles/big.zip"
	const cacheControl = "public, max-age=31536000, immutable"

	// A plain io.Reader of unknown size: the uploader cannot seek it.
	put := func(seed uint64, opt store.PutOptions) (store.Info, [32]byte, error) {
		h := sha256.New()
		r := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), size), h)
		opt.ContentType, opt.CacheControl = "application/zip", cacheControl
		info, err := s.Put(ctx, key, struct{ io.Reader }{r}, opt)
		return info, [32]byte(h.Sum(nil)), err
	}

	first, sum, err := put(1, store.PutOptions{CreateOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if first.Size != size || !strings.Contains(first.ETag, "-") {
		t.Fatalf("Put = %+v, want size %d and a multipart ETag (with a part count)", first, size)
	}
	checkContent(t, s, key, sum, first.ETag)
	head := headObject(t, srv, key)
	if aws.ToString(head.ContentType) != "application/zip" || aws.ToString(head.CacheControl) != cacheControl {
		t.Errorf("metadata: Content-Type %q, Cache-Control %q", aws.ToString(head.ContentType), aws.ToString(head.CacheControl))
	}

	// If-None-Match: * on CompleteMultipartUpload.
	if _, _, err := put(2, store.PutOptions{CreateOnly: true}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create-only multipart Put: %v, want fs.ErrExist", err)
	}
	checkContent(t, s, key, sum, first.ETag)

	// If-Match on CompleteMultipartUpload.
	second, sum2, err := put(3, store.PutOptions{IfMatch: first.ETag, Size: size})
	if err != nil {
		t.Fatalf("multipart CAS with the current ETag: %v", err)
	}
	if _, _, err := put(4, store.PutOptions{IfMatch: first.ETag}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("multipart CAS with a stale ETag: %v, want store.ErrConflict", err)
	}
	checkContent(t, s, key, sum2, second.ETag)
	if n := multipartUploads(t, srv); n != 0 {
		t.Errorf("%d multipart uploads left behind, want 0 (refused uploads are aborted)", n)
	}
}

// TestMultipartFailedReader checks that a body that breaks after some parts
// leaves neither an object nor an incomplete upload.
func TestMultipartFailedReader(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	s := open(t, srv, "")
	ctx := context.Background()
	r := io.MultiReader(io.LimitReader(rand.NewChaCha8([32]byte{}), 20<<20), errReader{})
	if _, err := s.Put(ctx, "broken.zip", r, store.PutOptions{}); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	if _, err := s.Stat(ctx, "broken.zip"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat after a failed Put: %v, want fs.ErrNotExist", err)
	}
	if n := multipartUploads(t, srv); n != 0 {
		t.Errorf("%d multipart uploads left behind, want 0", n)
	}
}

// TestMultipartCancelled checks that a multipart upload cancelled midway
// (Ctrl-C, SIGTERM, a deadline) is aborted, though its context is over.
func TestMultipartCancelled(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	s := open(t, srv, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const size = 64 << 20
	r := &cancellingReader{r: io.LimitReader(rand.NewChaCha8([32]byte{}), size), after: 20 << 20, cancel: cancel}
	_, err := s.Put(ctx, "apps/a/bundles/big.zip", r, store.PutOptions{Size: size})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Put: %v, want context.Canceled", err)
	}
	if r.n >= size {
		t.Fatalf("the upload read all %d bytes: it was not cancelled midway", r.n)
	}
	if _, err := s.Stat(context.Background(), "apps/a/bundles/big.zip"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat after a cancelled Put: %v, want fs.ErrNotExist", err)
	}
	if n := multipartUploads(t, srv); n != 0 {
		t.Errorf("%d multipart uploads left behind by the cancelled Put, want 0", n)
	}
}

// cancellingReader calls cancel once after bytes have been read.
type cancellingReader struct {
	r      io.Reader
	n      int64
	after  int64
	cancel context.CancelFunc
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n >= c.after {
		c.cancel()
	}
	return n, err
}

// TestUploads lists the incomplete uploads under a prefix, with the bytes
// of their parts, and aborts them.
func TestUploads(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	s := open(t, srv, "p")
	ctx := context.Background()
	before := time.Now().Add(-time.Minute)
	startUpload(t, srv, "p/apps/b/bundles/x.zip", 3<<20, 2<<20)
	want := startUpload(t, srv, "p/apps/a/bundles/y.zip", 1<<20, 1<<20)
	startUpload(t, srv, "other/apps/a/bundles/z.zip", 1)
	if _, err := s.Put(ctx, "apps/a/bundles/done.zip", strings.NewReader("done"), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	ups, err := s.Uploads(ctx, "apps/a/")
	if err != nil {
		t.Fatal(err)
	}
	if len(ups) != 1 || ups[0].Key != "apps/a/bundles/y.zip" || ups[0].ID != want || ups[0].Size != 2<<20 || ups[0].Started.Before(before) {
		t.Fatalf("Uploads(apps/a/) = %+v, want only apps/a/bundles/y.zip (%s), 2 MiB", ups, want)
	}
	if all, err := s.Uploads(ctx, ""); err != nil || len(all) != 2 || all[0].Key != "apps/a/bundles/y.zip" || all[1].Size != 5<<20 {
		t.Fatalf("Uploads() = %+v, %v, want the two under p/, sorted, with their sizes", all, err)
	}

	for range 2 { // aborting one that is gone is not an error
		if err := s.AbortUpload(ctx, ups[0]); err != nil {
			t.Fatal(err)
		}
	}
	if ups, err := s.Uploads(ctx, "apps/a/"); err != nil || len(ups) != 0 {
		t.Fatalf("Uploads after AbortUpload = %+v, %v, want none", ups, err)
	}
	if n := multipartUploads(t, srv); n != 2 {
		t.Errorf("%d multipart uploads in the bucket, want the 2 not aborted", n)
	}
}

// startUpload starts a multipart upload to key (a key in the bucket, not
// the store), uploads parts of the given sizes, and returns its id.
func startUpload(t *testing.T, srv *s3test.Server, key string, parts ...int) string {
	t.Helper()
	ctx := context.Background()
	out, err := srv.Client().CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &srv.Bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	for i, size := range parts {
		if _, err := srv.Client().UploadPart(ctx, &awss3.UploadPartInput{
			Bucket: &srv.Bucket, Key: &key, UploadId: out.UploadId, PartNumber: aws.Int32(int32(i + 1)),
			Body: bytes.NewReader(make([]byte, size)), ContentLength: aws.Int64(int64(size)),
		}); err != nil {
			t.Fatal(err)
		}
	}
	return aws.ToString(out.UploadId)
}

func TestErrorMapping(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	s := open(t, srv, "")
	ctx := context.Background()

	// A compare-and-swap on a key deleted since it was read: S3 answers
	// 404 NoSuchKey, and the object has changed.
	_, err := s.Put(ctx, "gone", strings.NewReader("v2"), store.PutOptions{IfMatch: `"0123456789abcdef0123456789abcdef"`})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CAS on a missing key: %v, want store.ErrConflict", err)
	}

	// A missing bucket is not a missing key, for any operation: HeadObject
	// answers both with a bare 404.
	nb := *srv
	nb.Bucket = "no-such-bucket"
	missing := open(t, &nb, "p")
	_, _, err = missing.Get(ctx, "k")
	checkNoBucket(t, "Get", "s3: get k: ", err)
	_, err = missing.Stat(ctx, "acl.json")
	checkNoBucket(t, "Stat", "s3: stat acl.json: ", err)
	_, err = missing.List(ctx, "apps/")
	checkNoBucket(t, "List", "s3: list apps/: ", err)
	_, err = missing.Put(ctx, "k", strings.NewReader("v"), store.PutOptions{CreateOnly: true, Size: 1})
	checkNoBucket(t, "Put", "s3: put k: ", err)
	err = missing.Delete(ctx, "k")
	checkNoBucket(t, "Delete", "s3: delete k: ", err)

	// In a bucket that exists, a missing key is still only that.
	if _, err := s.Stat(ctx, "acl.json"); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, store.ErrNoBucket) {
		t.Fatalf("Stat of a missing key: %v, want fs.ErrNotExist", err)
	}
}

func checkNoBucket(t *testing.T, op, prefix string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrNoBucket) || errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("%s in a missing bucket: %v, want an error that starts %q and wraps store.ErrNoBucket, not fs.ErrNotExist", op, err, prefix)
	}
}

func TestListPagination(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	s := open(t, srv, "p")
	ctx := context.Background()
	const n = 1003 // more than one page of 1000
	var wg sync.WaitGroup
	keys := make(chan int)
	errs := make(chan error, n)
	for range 8 {
		wg.Go(func() {
			for i := range keys {
				k := fmt.Sprintf("apps/a/builds/%d.json", i)
				if _, err := s.Put(ctx, k, strings.NewReader("x"), store.PutOptions{Size: 1}); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		keys <- i
	}
	close(keys)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "apps/a/builds/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("List returned %d objects, want %d", len(got), n)
	}
	for i := 1; i < len(got); i++ {
		if got[i-1].Key >= got[i].Key {
			t.Fatalf("List not sorted: %s before %s", got[i-1].Key, got[i].Key)
		}
	}
	if !strings.HasPrefix(got[0].Key, "apps/a/builds/") || got[0].ETag == "" || got[0].Size != 1 {
		t.Fatalf("List[0] = %+v", got[0])
	}
}

// TestListSkipsForeignKeys: an object under the prefix whose key the store
// could never write (a backend's temporary file, a dot segment) is not
// listed, so nothing that lists (prune, history) trips over it.
func TestListSkipsForeignKeys(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	s := open(t, srv, "p")
	ctx := context.Background()
	if _, err := s.Put(ctx, "apps/a/uploads/1.json", strings.NewReader("x"), store.PutOptions{Size: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client().PutObject(ctx, &awss3.PutObjectInput{Bucket: &srv.Bucket, Key: aws.String("p/apps/a/uploads/.1.json.tmp"), Body: strings.NewReader("y")}); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(ctx, "apps/a/uploads/")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "apps/a/uploads/1.json" {
		t.Fatalf("List = %+v, want only apps/a/uploads/1.json", got)
	}
}

func TestOpenErrors(t *testing.T) {
	// No region anywhere in the environment or the shared files.
	dir := t.TempDir()
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	tests := []struct {
		url, want string
	}{
		{"gs://bucket/p", `unsupported URL scheme "gs"`},
		{"s3:///prefix", "missing bucket"},
		{"s3://bucket/p?regoin=us-east-1", `unknown URL parameter "regoin"`},
		{"s3://bucket/p?region=us-east-1&path_style=yes please", `path_style="yes please" is not a boolean`},
		{"s3://bucket/p?region=us-east-1&endpoint=127.0.0.1:7070", `endpoint="127.0.0.1:7070" is not an http(s) URL`},
		{"s3://key:secret@bucket/p?region=us-east-1", "credentials in the URL are not supported"},
		{"s3://bucket/p", "no region for bucket bucket"},
		{"s3://bucket/p?region=%zz", "bad URL query"},
		{"s3://bucket/p?region=not a region", `region="not a region" is not an AWS region name`},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s3.Open(context.Background(), u)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(%s) error = %v, want one containing %q", tt.url, err, tt.want)
		}
	}

	// An endpoint without a region defaults to us-east-1.
	u, _ := url.Parse("s3://bucket?endpoint=http://127.0.0.1:1&path_style=true")
	if _, err := s3.Open(context.Background(), u); err != nil {
		t.Errorf("Open(%s): %v", u, err)
	}
}

func checkContent(t *testing.T, s store.Store, key string, sum [32]byte, etag string) {
	t.Helper()
	rc, info, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != sum {
		t.Fatalf("Get %s: content differs from what was uploaded", key)
	}
	if info.ETag != etag {
		t.Fatalf("Get %s: ETag %s, want %s", key, info.ETag, etag)
	}
}

func headObject(t *testing.T, srv *s3test.Server, key string) *awss3.HeadObjectOutput {
	t.Helper()
	out, err := srv.Client().HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: &srv.Bucket, Key: &key})
	if err != nil {
		t.Fatalf("HeadObject %s: %v", key, err)
	}
	return out
}

func multipartUploads(t *testing.T, srv *s3test.Server) int {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: &srv.Bucket})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	return len(out.Uploads)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("reader broke") }
