package cloudfront_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awscf "github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/cartona/deploy/publish/cloudfront"
)

const (
	distID    = "E2EXAMPLE7QZ3"
	accessKey = "AKIDCLOUDFRONTTEST"
	secretKey = "cloudfront-test-secret"
)

// invalidationBatch is the request body of CreateInvalidation.
type invalidationBatch struct {
	XMLName         xml.Name `xml:"InvalidationBatch"`
	CallerReference string
	Quantity        int      `xml:"Paths>Quantity"`
	Items           []string `xml:"Paths>Items>Path"`
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$`)

func newInvalidator(url string) *cloudfront.Invalidator {
	cfg := aws.Config{Credentials: credentials.NewStaticCredentialsProvider(accessKey, secretKey, "")}
	return cloudfront.New(cfg, distID, func(o *awscf.Options) { o.BaseEndpoint = aws.String(url) })
}

func TestInvalidate(t *testing.T) {
	paths := []string{"/apps/retailer/channels/production/latest.json", "apps/retailer/channels/beta/latest.json"}
	want := []string{"/apps/retailer/channels/production/latest.json", "/apps/retailer/channels/beta/latest.json"}
	var refs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/2020-05-31/distribution/"+distID+"/invalidation" {
			t.Errorf("request %s %s, want POST /2020-05-31/distribution/%s/invalidation", r.Method, r.URL.Path, distID)
		}
		var batch invalidationBatch
		if err := xml.Unmarshal(body, &batch); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		if batch.Quantity != len(want) || !slices.Equal(batch.Items, want) {
			t.Errorf("paths: quantity %d, items %q; want %d, %q", batch.Quantity, batch.Items, len(want), want)
		}
		if batch.CallerReference == "" {
			t.Error("empty CallerReference")
		}
		refs = append(refs, batch.CallerReference)
		checkSignature(t, r, body)

		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("Location", "https://cloudfront.amazonaws.com/2020-05-31/distribution/"+distID+"/invalidation/I2J0I21PCUYOIK")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">
  <Id>I2J0I21PCUYOIK</Id>
  <Status>InProgress</Status>
  <CreateTime>%s</CreateTime>
  <InvalidationBatch>%s</InvalidationBatch>
</Invalidation>`, time.Now().UTC().Format(time.RFC3339), innerXML(body))
	}))
	defer srv.Close()

	inv := newInvalidator(srv.URL)
	for range 2 {
		if err := inv.Invalidate(context.Background(), paths); err != nil {
			t.Fatal(err)
		}
	}
	if len(refs) != 2 || refs[0] == refs[1] {
		t.Fatalf("CallerReferences %q, want two different ones", refs)
	}
	if err := inv.Invalidate(context.Background(), nil); err != nil {
		t.Fatalf("Invalidate(nil): %v", err)
	}
	if len(refs) != 2 {
		t.Fatal("Invalidate(nil) sent a request")
	}
}

func TestInvalidateError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<?xml version="1.0"?>
<ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">
  <Error><Type>Sender</Type><Code>NoSuchDistribution</Code><Message>The specified distribution does not exist.</Message></Error>
  <RequestId>5f0c1a52-test</RequestId>
</ErrorResponse>`)
	}))
	defer srv.Close()

	err := newInvalidator(srv.URL).Invalidate(context.Background(), []string{"/a/latest.json"})
	if err == nil || !strings.Contains(err.Error(), "distribution "+distID) || !strings.Contains(err.Error(), "/a/latest.json") {
		t.Fatalf("error = %v, want one naming distribution %s and the path", err, distID)
	}
	var nsd *types.NoSuchDistribution
	if !errors.As(err, &nsd) {
		t.Fatalf("error = %v, want it to wrap *types.NoSuchDistribution", err)
	}
}

// checkSignature checks the SigV4 Authorization header: its credential
// scope, and its signature, recomputed over the headers it says it signed.
func checkSignature(t *testing.T, r *http.Request, body []byte) {
	t.Helper()
	auth := r.Header.Get("Authorization")
	m := authRE.FindStringSubmatch(auth)
	if m == nil {
		t.Errorf("Authorization = %q, want AWS4-HMAC-SHA256 SigV4", auth)
		return
	}
	key, date, region, service, signed := m[1], m[2], m[3], m[4], strings.Split(m[5], ";")
	if key != accessKey || service != "cloudfront" || region != "us-east-1" {
		t.Errorf("credential scope: key %s, region %s, service %s; want %s, us-east-1, cloudfront", key, region, service, accessKey)
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || signingTime.Format("20060102") != date {
		t.Errorf("X-Amz-Date %q does not match the scope date %s", r.Header.Get("X-Amz-Date"), date)
		return
	}

	// Sign a copy that carries only the signed headers; the signature must
	// come out the same.
	req, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range signed {
		switch h {
		case "host":
		case "content-length":
			req.ContentLength = int64(len(body))
		default:
			req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), service, region, signingTime); err != nil {
		t.Error(err)
		return
	}
	if recomputed := req.Header.Get("Authorization"); recomputed != auth {
		t.Errorf("signature does not verify:\n sent       %s\n recomputed %s", auth, recomputed)
	}
}

// innerXML returns the content of the request's InvalidationBatch element.
func innerXML(body []byte) string {
	s := string(body)
	i := strings.Index(s, "<InvalidationBatch")
	i += strings.Index(s[i:], ">") + 1
	return s[i:strings.LastIndex(s, "</InvalidationBatch>")]
}
