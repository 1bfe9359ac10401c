package cli

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/cartona/deploy/internal/s3test"
)

// TestExplainAWS maps the AWS errors users meet to one sentence with the
// fix and an exit status. The errors come from a real S3 server
// (versitygw) where it can produce them; access denied and a wrong region,
// which it does not model, are the SDK's own error type with S3's codes.
func TestExplainAWS(t *testing.T) {
	srv := s3test.Start(t).NewBucket(t)
	ctx := context.Background()
	list := func(t *testing.T, url string) error {
		t.Helper()
		st, err := OpenStore(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.List(ctx, "acl.json")
		if err == nil {
			t.Fatal("no error")
		}
		return err
	}
	noBucket := strings.Replace(srv.URL("x"), srv.Bucket, "no-such-bucket-here", 1)
	cases := []struct {
		name   string
		env    map[string]string
		err    func(t *testing.T) error
		msg    string
		hint   string
		status int
	}{
		{"no such bucket", nil, func(t *testing.T) error { return list(t, noBucket) },
			"the S3 bucket does not exist", "check the bucket name", exitUnavailable},
		{"wrong secret", map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong"}, func(t *testing.T) error { return list(t, srv.URL("x")) },
			"AWS refused your credentials (SignatureDoesNotMatch)", "AWS_SECRET_ACCESS_KEY", exitNotGranted},
		{"unknown access key", map[string]string{"AWS_ACCESS_KEY_ID": "nosuchuser"}, func(t *testing.T) error { return list(t, srv.URL("x")) },
			"AWS refused your credentials", "AWS_ACCESS_KEY_ID", exitNotGranted},
		{"unknown access key, stat", map[string]string{"AWS_ACCESS_KEY_ID": "nosuchuser"}, func(t *testing.T) error {
			st, err := OpenStore(ctx, srv.URL("x"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = st.Stat(ctx, "acl.json")
			return err
		}, "AWS refused your credentials", "AWS_ACCESS_KEY_ID", exitNotGranted},
		{"no credentials", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
			"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"}, func(t *testing.T) error { return list(t, srv.URL("x")) },
			"no AWS credentials found", "aws_profile=", exitUnavailable},
		{"unknown profile", map[string]string{"AWS_PROFILE": "nosuch", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent"},
			func(t *testing.T) error { _, err := awsConfig(ctx); return err },
			"the AWS profile does not exist", "aws configure list-profiles", exitUnavailable},
		{"access denied", nil, func(*testing.T) error {
			return &smithy.OperationError{ServiceID: "S3", OperationName: "ListObjectsV2", Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}}
		}, "AWS denied access to the S3 bucket", "s3:ListBucket", exitNotGranted},
		{"access denied to delete", nil, func(*testing.T) error {
			return &smithy.OperationError{ServiceID: "S3", OperationName: "DeleteObject", Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}}
		}, "AWS denied access to the S3 bucket", "give your AWS user or role s3:DeleteObject", exitNotGranted},
		{"access denied to list incomplete uploads", nil, func(*testing.T) error {
			return &smithy.OperationError{ServiceID: "S3", OperationName: "ListMultipartUploads", Err: &smithy.GenericAPIError{Code: "AccessDenied", Message: "Access Denied"}}
		}, "AWS denied access to the S3 bucket", "give your AWS user or role s3:ListBucketMultipartUploads", exitNotGranted},
		{"wrong region", nil, func(*testing.T) error {
			return &smithy.OperationError{ServiceID: "S3", OperationName: "ListObjectsV2", Err: &smithy.GenericAPIError{Code: "PermanentRedirect", Message: "The bucket you are attempting to access must be addressed using the specified endpoint."}}
		}, "in another AWS region", "?region=REGION", exitUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv.Setenv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			err := c.err(t)
			msg, hint := errorParts(err)
			if !strings.Contains(msg, c.msg) || !strings.Contains(hint, c.hint) {
				t.Errorf("error %q\nexplained as %q / %q, want %q / %q", err, msg, hint, c.msg, c.hint)
			}
			if got := exitStatus(err); got != c.status {
				t.Errorf("exit status %d, want %d", got, c.status)
			}
		})
	}
	if _, _, ok := explainAWS(errors.New("some other failure")); ok {
		t.Error("an unrelated error was explained as an AWS error")
	}
	t.Run("login", func(t *testing.T) {
		isolate(t)
		srv.Setenv(t)
		status, out, errOut := run(t, []string{"login", "store=" + noBucket, "--json"})
		if status != exitUnavailable || !strings.Contains(out, "the S3 bucket does not exist") {
			t.Errorf("login to a missing bucket: status %d\n%s%s", status, out, errOut)
		}
	})
}

// TestS3PoliciesDocumented checks the README's S3 policies against what
// deploy calls: the uploaders' policy grants what uploads and release
// commands need (their leases are deleted when they are done), and, with
// the statements added for prune, every S3 permission deploy uses.
func TestS3PoliciesDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## S3 and CloudFront\n")
	section, _, _ = strings.Cut(section, "\n## ")
	action := regexp.MustCompile(`"s3:[A-Za-z]+"`)
	var uploaders string
	all := map[string]bool{}
	for _, m := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatch(section, -1) {
		if strings.Contains(m[1], `"Version"`) && strings.Contains(m[1], "cloudfront:CreateInvalidation") {
			uploaders = m[1]
		}
		for _, a := range action.FindAllString(m[1], -1) {
			all[strings.Trim(a, `"`)] = true
		}
	}
	if uploaders == "" {
		t.Fatal(`no uploaders' policy in the README's "S3 and CloudFront"`)
	}
	for _, p := range []string{"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:ListBucket"} {
		if !strings.Contains(uploaders, `"`+p+`"`) {
			t.Errorf("the uploaders' policy does not grant %s", p)
		}
	}
	for _, p := range s3Permissions {
		if !all[p] {
			t.Errorf(`no policy in the README's "S3 and CloudFront" grants %s`, p)
		}
	}
}
