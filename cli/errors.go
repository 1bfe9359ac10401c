package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"strings"
	"syscall"

	"github.com/aws/smithy-go"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/state"
	"github.com/cartona/deploy/tracker"
)

// Exit statuses of deploy, documented in `deploy help exit-codes` and the
// README.
const (
	exitOK          = 0   // success
	exitFailure     = 1   // any other failure
	exitUsage       = 2   // a bad command line or configuration
	exitNotGranted  = 3   // the user may not do this (ACL, AWS access denied)
	exitVerify      = 4   // a signature or manifest failed verification
	exitPartial     = 5   // done, but a follow-up step failed (CDN invalidation)
	exitUnavailable = 6   // the network, store or tracker could not be reached
	exitInternal    = 70  // a bug in deploy: a panic (sysexits EX_SOFTWARE)
	exitInterrupted = 130 // stopped by a signal, as shells report Ctrl-C (128+SIGINT)
)

// exitCodes names each status for `deploy help exit-codes` and for the
// "code" of a JSON error.
var exitCodes = []struct {
	status int
	code   string
	means  string
}{
	{exitOK, "ok", "success"},
	{exitFailure, "failure", "the command failed (the message says why)"},
	{exitUsage, "usage", "bad command line or configuration: unknown command or parameter, bad value, missing parameter, unknown configuration key"},
	{exitNotGranted, "not_granted", "not allowed: the ACL grants no upload, or AWS refused the credentials or denied access"},
	{exitVerify, "verification_failed", "a signature, the ACL, a latest.json, a bundle, a file manifest or a file object failed verification"},
	{exitPartial, "partial", "the main step succeeded but a follow-up failed: published, but the CloudFront invalidation failed"},
	{exitUnavailable, "unavailable", "the store, the network, AWS or the tracker could not be reached, or a store does not exist"},
	{exitInternal, "internal", "a bug in deploy (as sysexits EX_SOFTWARE): an internal error, never a stack trace; the message says where to report it"},
	{exitInterrupted, "interrupted", "stopped by Ctrl-C (SIGINT) or SIGTERM before it finished; nothing is half-written: run the command again"},
}

// usageError is a mistake in the command line or configuration.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// partialError is a failure after the main step succeeded; result, if
// set, is what was done, printed with the error under --json.
type partialError struct {
	error
	result any
}

func (e partialError) Unwrap() error { return e.error }

// partial makes err, if any, a partial success whose result is res.
func partial(err error, res any) error {
	if err == nil {
		return nil
	}
	return partialError{err, res}
}

// resultError is a failure that still has a result, printed with the
// error under --json; its exit status is that of the error it wraps.
type resultError struct {
	error
	result any
}

func (e resultError) Unwrap() error { return e.error }

// unavailableError is a store, network or tracker that could not be reached.
type unavailableError struct{ error }

func (e unavailableError) Unwrap() error { return e.error }

// reportURL is where users report bugs.
const reportURL = "https://github.com/cartona/deploy/issues"

// internalError is a panic in a command: a bug in deploy. Its message says
// what failed in plain words and where to report it; the panic value, which
// may name Go types or internals, is not shown.
type internalError struct{ value any }

func (e internalError) Error() string {
	return "internal error: deploy stopped on a bug; please report it at " + reportURL + " with the command you ran"
}

// hintError carries the next step to take, printed after the message.
type hintError struct {
	error
	hint string
}

func (e hintError) Unwrap() error { return e.error }

// withHint attaches a hint to err, keeping its exit status.
func withHint(err error, hint string) error { return hintError{err, hint} }

// exitStatus maps an error to its exit status: the one place that decides.
func exitStatus(err error) int {
	var (
		ue usageError
		ng *publish.NotGrantedError
		pe partialError
		un unavailableError
		ne net.Error
	)
	var ie internalError
	switch rule := manifest.RuleOf(err); {
	case err == nil:
		return exitOK
	case errors.As(err, &ie):
		return exitInternal
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.As(err, &ue), errors.Is(err, publish.ErrInvalid):
		return exitUsage
	case errors.As(err, &pe):
		return exitPartial
	case errors.As(err, &ng), rule == manifest.RuleNotGranted, errors.Is(err, tracker.ErrStatsRefused), errors.Is(err, state.ErrRefused):
		return exitNotGranted
	case rule != "":
		return exitVerify
	case errors.Is(err, publish.ErrNoACL): // as for a store that does not exist
		return exitUnavailable
	}
	if _, _, ok := explainAWS(err); ok {
		return exitStatusAWS(err)
	}
	if errors.As(err, &un) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return exitUnavailable
	}
	return exitFailure
}

func codeName(status int) string {
	for _, c := range exitCodes {
		if c.status == status {
			return c.code
		}
	}
	return "failure"
}

// errorParts splits err into the one-line message and the hint shown to the
// user; AWS SDK errors become a sentence with the fix.
func errorParts(err error) (msg, hint string) {
	var he hintError
	if errors.As(err, &he) {
		hint = he.hint
	}
	var ie *publish.InvalidationError
	if errors.As(err, &ie) {
		m, _ := errorParts(ie.Err)
		var api smithy.APIError
		if errors.As(ie.Err, &api) {
			switch api.ErrorCode() {
			case "NoSuchDistribution":
				m = "the CloudFront distribution in distribution= does not exist"
			case "AccessDenied":
				m = "AWS denied the invalidation"
			}
		}
		return fmt.Sprintf("channel %s changed in the store, but the CDN invalidation of its latest.json failed: %s", ie.Channel, m),
			"devices see the change within 60 s anyway, when their cached latest.json expires. Running the command again invalidates nothing, since nothing changes; " +
				"for the next time, check distribution= (the distribution's id, E...) and that your AWS credentials allow cloudfront:CreateInvalidation"
	}
	if m, h, ok := explainAWS(err); ok {
		return m, h
	}
	if m, h, ok := explainSystem(err); ok {
		return m, h
	}
	return err.Error(), hint
}

// explainSystem turns the network and file system errors users meet (a
// host that cannot be reached, a folder they may not write) into one
// sentence and its fix, without the Go call that failed.
func explainSystem(err error) (msg, hint string, ok bool) {
	var (
		ue  *url.Error
		dns *net.DNSError
		pe  *fs.PathError
	)
	switch {
	case errors.As(err, &ue):
		host := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Host
		}
		why := "the connection failed"
		switch {
		case errors.As(err, &dns):
			why = "no such host"
		case errors.Is(err, syscall.ECONNREFUSED):
			why = "the connection was refused"
		case ue.Timeout():
			why = "it did not answer in time"
		}
		return fmt.Sprintf("cannot reach %s: %s", host, why), "check the network, and the host in store=, endpoint= or tracker=", true
	case errors.Is(err, fs.ErrPermission) && errors.As(err, &pe):
		return fmt.Sprintf("permission denied on %s", pe.Path), "check its owner and permissions, or choose another store= (or key_file=)", true
	}
	return "", "", false
}

// printError reports err: as {"error": {...}} on stdout with --json, else
// as "deploy: message" and the hint on stderr.
func printError(stdio IO, asJSON bool, err error) int {
	status := exitStatus(err)
	msg, hint := errorParts(err)
	if asJSON {
		body := map[string]string{"code": codeName(status), "message": msg}
		if hint != "" {
			body["hint"] = hint
		}
		doc := map[string]any{"error": body}
		var (
			pe partialError
			re resultError
		)
		if errors.As(err, &pe) && pe.result != nil {
			doc["result"] = pe.result
		} else if errors.As(err, &re) {
			doc["result"] = re.result
		}
		writeJSON(stdio.Out, doc)
		return status
	}
	fmt.Fprintf(stdio.Err, "deploy: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(stdio.Err, "hint: %s\n", hint)
	}
	return status
}

// explainAWS turns the AWS SDK errors users meet (no credentials, wrong
// region, access denied, no such bucket) into one sentence and its fix.
func explainAWS(err error) (msg, hint string, ok bool) {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchBucket":
			return "the S3 bucket does not exist", "check the bucket name in store=s3://BUCKET/prefix, or create the bucket", true
		case "AccessDenied", "Forbidden", "AllAccessDisabled":
			var op *smithy.OperationError
			if errors.As(err, &op) && s3Permissions[op.OperationName] != "" {
				return "AWS denied access to the S3 bucket", "give your AWS user or role " + s3Permissions[op.OperationName] +
					` (the README's "S3 and CloudFront" has a policy for each role), or pick another profile with aws_profile=`, true
			}
			return "AWS denied access to the S3 bucket", "give your AWS user or role s3:GetObject, s3:PutObject and s3:ListBucket on the bucket, or pick another profile with aws_profile=", true
		case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "XAdminUserNotFound":
			return "AWS refused your credentials (" + api.ErrorCode() + ")", "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or log in again (aws sso login) for your profile", true
		case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
			return "the S3 bucket is in another AWS region than the one used", "add the bucket's region to the store URL: s3://bucket/prefix?region=REGION", true
		}
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "failed to retrieve credentials"), strings.Contains(s, "no EC2 IMDS role found"),
		strings.Contains(s, "get credentials"), strings.Contains(s, "failed to refresh cached credentials"):
		return "no AWS credentials found", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, run `aws configure` or `aws sso login`, or name a profile with aws_profile=", true
	case strings.Contains(s, "failed to get shared config profile"):
		return "the AWS profile does not exist", "list your profiles with `aws configure list-profiles` and set aws_profile= to one of them", true
	case strings.Contains(s, "Invalid region") || strings.Contains(s, "region must be set") || strings.Contains(s, "could not resolve endpoint"):
		return "no valid AWS region", "add ?region=REGION to the store URL, or set AWS_REGION", true
	}
	return "", "", false
}

// s3Permissions is the IAM action each S3 call of deploy needs.
var s3Permissions = map[string]string{
	"GetObject":               "s3:GetObject",
	"HeadObject":              "s3:GetObject",
	"PutObject":               "s3:PutObject",
	"CreateMultipartUpload":   "s3:PutObject",
	"UploadPart":              "s3:PutObject",
	"CompleteMultipartUpload": "s3:PutObject",
	"AbortMultipartUpload":    "s3:AbortMultipartUpload",
	"DeleteObject":            "s3:DeleteObject",
	"ListObjectsV2":           "s3:ListBucket",
	"ListMultipartUploads":    "s3:ListBucketMultipartUploads",
	"ListParts":               "s3:ListMultipartUploadParts",
}

// exitStatusAWS is the exit status of an AWS error explainAWS knows.
func exitStatusAWS(err error) int {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "AccessDenied", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "XAdminUserNotFound":
			return exitNotGranted
		}
	}
	return exitUnavailable
}

// discard is an IO that drops everything, for quiet store lookups.
var discard = IO{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard}
