package publish_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/cartona/deploy/internal/s3test"
	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
	"github.com/cartona/deploy/store"
	"github.com/cartona/deploy/store/s3"
)

// version is a build tree whose files partly change with n.
func version(n int) map[string]string {
	shared := strings.Repeat("export const shared = 1;\n", 200)
	return map[string]string{
		"index.html":            fmt.Sprintf("<!doctype html><script src=main.js></script><!-- %d -->", n),
		"main.js":               fmt.Sprintf("%s\nconst build = %d; notifyAppReady()", strings.Repeat("x = 1;\n", 300), n),
		"vendor.js":             shared,
		fmt.Sprintf("%d.js", n): strings.Repeat(fmt.Sprintf("chunk %d;\n", n), 100),
	}
}

func (f *fixture) upload(t *testing.T, channel string, tree map[string]string) *publish.Result {
	t.Helper()
	res, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Channel: channel, Dir: writeTree(t, tree)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// checkDownloads checks that build number n verifies and that each of its
// files downloads and matches.
func (f *fixture) checkDownloads(t *testing.T, n int64) {
	t.Helper()
	ctx := context.Background()
	acl, err := f.trust.VerifyACL(f.get(t, manifest.ACLKey), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := manifest.VerifyBuild(acl, f.get(t, manifest.BuildKey("retailer", n)), "retailer")
	if err != nil {
		t.Fatalf("build %d: %v", n, err)
	}
	rc, _, err := f.store.Get(ctx, b.Bundle)
	if err != nil {
		t.Fatalf("build %d: %v", n, err)
	}
	err = manifest.VerifyBundle(b.BuildRef, rc)
	rc.Close()
	if err != nil {
		t.Fatalf("build %d: %v", n, err)
	}
	fm, _, err := manifest.ReadFileManifest(b.BuildRef, "retailer", f.get(t, manifest.FileManifestKey("retailer", b.FilesSHA256)))
	if err != nil {
		t.Fatalf("build %d: %v", n, err)
	}
	for _, e := range fm.Files {
		f.fileContent(t, "retailer", e)
	}
}

func (f *fixture) prune(t *testing.T, opt publish.PruneOptions) *publish.PruneResult {
	t.Helper()
	opt.App = "retailer"
	res, err := f.publisher().Prune(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestPruneKeepsWhatIsReferenced(t *testing.T) {
	eachStore(t, testPruneKeeps)
}

func testPruneKeeps(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore(t))
	f.upload(t, "beta", version(1)) // build 1, beta's
	for n := 2; n <= 5; n++ {
		f.upload(t, "production", version(n))
	}
	before := f.keys(t)

	if res := f.prune(t, publish.PruneOptions{Keep: 1}); len(res.Items) != 0 {
		t.Fatalf("objects younger than the grace period went: %v", res.Items)
	}
	if res := f.prune(t, publish.PruneOptions{Keep: 1, OlderThan: time.Hour, Grace: -1}); len(res.Items) != 0 {
		t.Fatalf("builds recorded within older_than went: %v", res.Items)
	}
	dry := f.prune(t, publish.PruneOptions{Keep: 2, Grace: -1, DryRun: true})
	if !slices.Equal(f.keys(t), before) {
		t.Fatal("a dry run removed objects")
	}
	res := f.prune(t, publish.PruneOptions{Keep: 2, Grace: -1})
	if !slices.Equal(res.Builds, []int64{2, 3}) || !slices.Equal(res.Kept, []int64{1, 4, 5}) {
		t.Fatalf("removed builds %v and kept %v, want 2, 3 and 1, 4, 5", res.Builds, res.Kept)
	}
	if !slices.Equal(dry.Items, res.Items) || dry.Bytes != res.Bytes || res.Bytes == 0 {
		t.Fatalf("dry run listed %v (%d bytes), prune removed %v (%d bytes)", dry.Items, dry.Bytes, res.Items, res.Bytes)
	}
	// Builds 2 and 3 go with their bundles, manifests and own files
	// (index.html, main.js and a chunk each), and the patch from 2's
	// manifest to 3's; the shared vendor.js and the patches to the
	// manifests of builds 4 and 5 stay, whatever their base.
	var removed []string
	for _, it := range res.Items {
		removed = append(removed, it.Key)
	}
	if len(removed) != 2*6+1 {
		t.Fatalf("removed %d objects, want 13: %v", len(removed), removed)
	}
	patches := 0
	for _, k := range f.keys(t) {
		if _, to, ok := manifest.ParseFilesPatchKey("retailer", k); ok {
			patches++
			f.get(t, manifest.FileManifestKey("retailer", to))
		}
	}
	if patches != 5 {
		t.Fatalf("%d patches stay, want 5: to build 4 from 2 and 3, to build 5 from 2, 3 and 4", patches)
	}
	for _, n := range []int64{1, 4, 5} {
		f.checkDownloads(t, n)
	}
	f.readBuild(t, "retailer", "beta")
	f.readBuild(t, "retailer", "production")
	if again := f.prune(t, publish.PruneOptions{Keep: 2, Grace: -1}); len(again.Items) != 0 {
		t.Fatalf("a second prune removed %v", again.Items)
	}
}

// rollbackTarget is the pointer `deploy rollback` goes back to on channel.
func (f *fixture) rollbackTarget(t *testing.T, channel string) *manifest.Latest {
	t.Helper()
	acl, err := f.trust.VerifyACL(f.get(t, manifest.ACLKey), 0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := publish.ReadHistory(context.Background(), f.store, acl, "retailer", channel)
	if err != nil {
		t.Fatal(err)
	}
	target, err := publish.RollbackTarget(h.Chain)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// TestPruneKeepsTheRollbackTarget keeps the build a channel would roll
// back to, however many newer builds other channels have.
func TestPruneKeepsTheRollbackTarget(t *testing.T) {
	f := newFixture(t, fileStore(t))
	f.upload(t, "production", version(1))
	f.upload(t, "production", version(2))
	for n := 3; n <= 5; n++ {
		f.upload(t, "beta", version(n))
	}
	res := f.prune(t, publish.PruneOptions{Keep: 2, Grace: -1})
	if !slices.Equal(res.Builds, []int64{3}) || !slices.Equal(res.Kept, []int64{1, 2, 4, 5}) {
		t.Fatalf("removed builds %v and kept %v, want 3 and 1, 2, 4, 5", res.Builds, res.Kept)
	}
	f.checkDownloads(t, 1)
	ctx := context.Background()
	p := f.publisher()
	target := f.rollbackTarget(t, "production")
	if target.Build.Number != 1 {
		t.Fatalf("rollback target %d, want build 1", target.Build.Number)
	}
	if _, err := p.Change(ctx, "retailer", "production", publish.Rollback(target), false); err != nil {
		t.Fatalf("rollback after the prune: %v", err)
	}
	if got, _ := f.readBuild(t, "retailer", "production"); got.Number != 1 {
		t.Fatalf("production serves build %d after the rollback, want 1", got.Number)
	}
}

func TestPruneRefusesKeepZero(t *testing.T) {
	f := newFixture(t, fileStore(t))
	if _, err := f.publisher().Prune(context.Background(), publish.PruneOptions{App: "retailer"}); err == nil || !strings.Contains(err.Error(), "keep at least 1") {
		t.Fatalf("keep=0: %v", err)
	}
}

// hookStore calls a hook before each Delete and List.
type hookStore struct {
	store.Store
	onDelete func(key string)
	onList   func(prefix string)
	afterPut func(key string)
}

func (s *hookStore) Put(ctx context.Context, key string, r io.Reader, opt store.PutOptions) (store.Info, error) {
	in, err := s.Store.Put(ctx, key, r, opt)
	if err == nil && s.afterPut != nil {
		s.afterPut(key)
	}
	return in, err
}

func (s *hookStore) Delete(ctx context.Context, key string) error {
	if s.onDelete != nil {
		s.onDelete(key)
	}
	return s.Store.Delete(ctx, key)
}

func (s *hookStore) List(ctx context.Context, prefix string) ([]store.Info, error) {
	if s.onList != nil {
		s.onList(prefix)
	}
	return s.Store.List(ctx, prefix)
}

// An upload that starts while a prune is removing the objects it needs
// waits for the prune, then writes them again.
func TestUploadWaitsForAPruneThatDoomedItsObjects(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		for n := 1; n <= 3; n++ {
			f.upload(t, "production", version(n))
		}
		deleting, resume := make(chan struct{}), make(chan struct{})
		var once sync.Once
		pruner := f.publisher()
		pruner.Store = &hookStore{Store: f.store, onDelete: func(key string) {
			if strings.Contains(key, "/builds/") {
				once.Do(func() { close(deleting); <-resume })
			}
		}}
		pruned := make(chan error, 1)
		go func() {
			_, err := pruner.Prune(context.Background(), publish.PruneOptions{App: "retailer", Keep: 1, Grace: -1})
			pruned <- err
		}()
		select { // the prune has written its doomed list and begun
		case <-deleting:
		case err := <-pruned:
			t.Fatalf("the prune ended (%v) before deleting a build record", err)
		}
		uploaded := make(chan *publish.Result, 1)
		waits := make(chan string, 1)
		up := f.publisher()
		up.Waiting = func(why string) { waits <- why }
		dir := writeTree(t, version(1)) // build 1's objects again
		go func() {
			res, err := up.Upload(context.Background(), publish.Request{App: "retailer", Channel: "production", Dir: dir})
			if err != nil {
				t.Error(err)
			}
			uploaded <- res
		}()
		select {
		case res := <-uploaded:
			t.Fatalf("the upload finished (%v) while the prune was deleting its objects", res)
		case <-time.After(500 * time.Millisecond):
		}
		select {
		case why := <-waits:
			if !strings.Contains(why, "waiting for the prune of retailer that started at ") {
				t.Errorf("the upload says %q as it waits", why)
			}
		default:
			t.Error("the upload waits without saying so")
		}
		close(resume)
		if err := <-pruned; err != nil {
			t.Fatal(err)
		}
		res := <-uploaded
		f.checkDownloads(t, res.Number)
	})
}

// A prune that starts while an upload holds its lease spares the objects
// the upload is about to reference.
func TestPruneSparesWhatARunningUploadLeased(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		for n := 1; n <= 3; n++ {
			f.upload(t, "production", version(n))
		}
		listing, resume := make(chan struct{}), make(chan struct{})
		var once sync.Once
		up := f.publisher()
		up.Store = &hookStore{Store: f.store, onList: func(prefix string) {
			if strings.HasSuffix(prefix, "/files/") { // after the lease, before looking at files
				once.Do(func() { close(listing); <-resume })
			}
		}}
		uploaded := make(chan error, 1)
		var res *publish.Result
		go func() {
			var err error
			res, err = up.Upload(context.Background(), publish.Request{App: "retailer", Dir: writeTree(t, version(1))})
			uploaded <- err
		}()
		<-listing
		pr := f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1})
		close(resume)
		if err := <-uploaded; err != nil {
			t.Fatal(err)
		}
		if pr.Spared == 0 || !slices.Equal(pr.Builds, []int64{1}) {
			t.Fatalf("prune removed builds %v and spared %d objects; want 1 (2 is the rollback target) and build 1's files spared", pr.Builds, pr.Spared)
		}
		f.checkDownloads(t, res.Number)
	})
}

// A prune that runs between an upload's build record and its pointer
// spares the record: the upload's lease names it before it is written.
func TestPruneSparesABuildRecordNotYetPointedAt(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		for n := 1; n <= 2; n++ {
			f.upload(t, "production", version(n))
		}
		var pr *publish.PruneResult
		up := f.publisher()
		up.Store = &hookStore{Store: f.store, afterPut: func(key string) {
			if _, ok := manifest.ParseBuildKey("retailer", key); ok && pr == nil {
				f.upload(t, "beta", version(3)) // a newer build, which keep=1 keeps
				pr = f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1})
			}
		}}
		res, err := up.Upload(context.Background(), publish.Request{App: "retailer", Channel: "staging", Dir: writeTree(t, version(4))})
		if err != nil {
			t.Fatal(err)
		}
		if pr == nil || slices.Contains(pr.Builds, res.Number) {
			t.Fatalf("the prune between record and pointer removed builds %v; build %d is the upload's", pr.Builds, res.Number)
		}
		f.checkDownloads(t, res.Number)
	})
}

// A prune that runs while a promote points a channel at an old build,
// between the history entry and latest.json, spares that build.
func TestPruneSparesABuildBeingPromoted(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		var old manifest.BuildRef
		for n := 1; n <= 3; n++ {
			f.upload(t, "production", version(n))
			if n == 1 {
				old = f.verifyChannel(t, "retailer", "production").Build
			}
		}
		var pr *publish.PruneResult
		promoter := f.publisher()
		promoter.Store = &hookStore{Store: f.store, afterPut: func(key string) {
			if key == manifest.HistoryKey("retailer", "beta", 1) && pr == nil {
				pr = f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1})
			}
		}}
		if _, err := promoter.CreateChannel(context.Background(), "retailer", "beta", old, manifest.Settings{}, "", false); err != nil {
			t.Fatal(err)
		}
		if pr == nil || slices.Contains(pr.Builds, old.Number) {
			t.Fatalf("the prune during the promote removed builds %v; build %d is the promoted one", pr.Builds, old.Number)
		}
		f.checkDownloads(t, old.Number)
	})
}

// The same with a promote over a channel's build: the edit changes the
// pointer it is given in place, and the promoted build is still spared.
func TestPruneSparesABuildPromotedOverAnother(t *testing.T) {
	f := newFixture(t, fileStore(t))
	var refs []manifest.BuildRef
	for n := 1; n <= 3; n++ {
		f.upload(t, "production", version(n))
		refs = append(refs, f.verifyChannel(t, "retailer", "production").Build)
	}
	ctx := context.Background()
	if _, err := f.publisher().CreateChannel(ctx, "retailer", "beta", refs[2], manifest.Settings{}, "", false); err != nil {
		t.Fatal(err)
	}
	var pr *publish.PruneResult
	promoter := f.publisher()
	promoter.Store = &hookStore{Store: f.store, afterPut: func(key string) {
		if key == manifest.HistoryKey("retailer", "beta", 2) && pr == nil {
			pr = f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1})
		}
	}}
	if _, err := promoter.Change(ctx, "retailer", "beta", publish.Promote(refs[0]), false); err != nil {
		t.Fatal(err)
	}
	if pr == nil || slices.Contains(pr.Builds, refs[0].Number) {
		t.Fatalf("the prune during the promote removed builds %v; build %d is the promoted one", pr.Builds, refs[0].Number)
	}
	f.checkDownloads(t, refs[0].Number)
}

// Uploads and prunes racing freely lose nothing a channel needs.
func TestConcurrentUploadsAndPrunesLoseNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, newStore func(t *testing.T) store.Store) {
		f := newFixture(t, newStore(t))
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for u := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 4 {
					_, err := f.publisher().Upload(context.Background(), publish.Request{App: "retailer", Channel: fmt.Sprintf("c%d", u), Dir: writeTree(t, version(i%2+u))})
					errs <- err
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		for running := true; running; {
			select {
			case <-done:
				running = false
			default:
				_, err := f.publisher().Prune(context.Background(), publish.PruneOptions{App: "retailer", Keep: 1, Grace: -1})
				if err != nil && !strings.Contains(err.Error(), "another prune") {
					errs <- err
				}
			}
		}
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1})
		for u := range 3 {
			ref, _ := f.readBuild(t, "retailer", fmt.Sprintf("c%d", u))
			f.checkDownloads(t, ref.Number)
		}
	})
}

// A build held for a promote or rollback is spared by a prune until it is
// released; a pruned one cannot be held.
func TestHeldBuildIsSpared(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	refs := map[int64]manifest.BuildRef{}
	for n := 1; n <= 4; n++ { // build 3 is the rollback target, kept
		f.upload(t, "production", version(n))
		refs[int64(n)] = f.verifyChannel(t, "retailer", "production").Build
	}
	release, err := f.publisher().HoldBuild(ctx, "retailer", refs[2])
	if err != nil {
		t.Fatal(err)
	}
	if res := f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1}); !slices.Equal(res.Builds, []int64{1}) || res.Spared == 0 {
		t.Fatalf("removed builds %v, spared %d objects; want build 1 removed and build 2 spared", res.Builds, res.Spared)
	}
	f.checkDownloads(t, 2)
	release()
	if res := f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1}); !slices.Equal(res.Builds, []int64{2}) {
		t.Fatalf("after the release, removed builds %v, want 2", res.Builds)
	}
	if _, err := f.publisher().HoldBuild(ctx, "retailer", refs[2]); err == nil || !strings.Contains(err.Error(), "was pruned") {
		t.Fatalf("holding a pruned build: %v", err)
	}
}

// A prune aborts the incomplete uploads that interrupted uploads left
// under the app (S3 multipart uploads, never listed as objects) once they
// are older than the grace period, and reports them, but not those to a
// key that a running upload's lease names, nor another app's.
func TestPruneAbortsIncompleteUploads(t *testing.T) {
	srv := s3test.Start(t)
	srv.Setenv(t)
	u, err := url.Parse(srv.URL("p"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := s3.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, st)
	f.upload(t, "production", version(1))
	ctx := context.Background()
	start := func(key string, size int) {
		t.Helper()
		out, err := srv.Client().CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &srv.Bucket, Key: aws.String("p/" + key)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Client().UploadPart(ctx, &awss3.UploadPartInput{Bucket: &srv.Bucket, Key: aws.String("p/" + key), UploadId: out.UploadId,
			PartNumber: aws.Int32(1), Body: bytes.NewReader(make([]byte, size)), ContentLength: aws.Int64(int64(size))}); err != nil {
			t.Fatal(err)
		}
	}
	start("apps/retailer/bundles/left.zip", 3<<20)
	start("apps/retailer/bundles/leased.zip", 1<<20)
	start("apps/other/bundles/left.zip", 1<<20)
	lease := fmt.Sprintf(`{"started":%q,"keys":["apps/retailer/bundles/leased.zip"]}`, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := st.Put(ctx, "apps/retailer/uploads/0123456789abcdef0123456789abcdef.json", strings.NewReader(lease), store.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	remaining := func() []string {
		t.Helper()
		out, err := srv.Client().ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &srv.Bucket})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, u := range out.Uploads {
			keys = append(keys, aws.ToString(u.Key))
		}
		slices.Sort(keys)
		return keys
	}
	prune := func(later time.Duration, dryRun bool) *publish.PruneResult {
		t.Helper()
		p := f.publisher()
		p.Now = func() time.Time { return time.Now().Add(later) }
		res, err := p.Prune(ctx, publish.PruneOptions{App: "retailer", Keep: 1, DryRun: dryRun})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	all := []string{"p/apps/other/bundles/left.zip", "p/apps/retailer/bundles/leased.zip", "p/apps/retailer/bundles/left.zip"}

	if res := prune(0, false); len(res.Uploads) != 0 || !slices.Equal(remaining(), all) {
		t.Fatalf("a prune within the grace period aborted %+v; left %v", res.Uploads, remaining())
	}
	// 90 minutes on: past the hour of grace, within the lease's 2 hours.
	res := prune(90*time.Minute, true)
	if len(res.Uploads) != 1 || res.Uploads[0].Key != "apps/retailer/bundles/left.zip" || res.Uploads[0].Size != 3<<20 || res.Uploads[0].Started.IsZero() {
		t.Fatalf("dry run: would abort %+v, want apps/retailer/bundles/left.zip (3 MiB)", res.Uploads)
	}
	if !slices.Equal(remaining(), all) {
		t.Fatalf("a dry run aborted uploads: left %v", remaining())
	}
	res = prune(90*time.Minute, false)
	if len(res.Uploads) != 1 || res.Uploads[0].Key != "apps/retailer/bundles/left.zip" {
		t.Fatalf("prune aborted %+v, want apps/retailer/bundles/left.zip", res.Uploads)
	}
	if got, want := remaining(), []string{"p/apps/other/bundles/left.zip", "p/apps/retailer/bundles/leased.zip"}; !slices.Equal(got, want) {
		t.Fatalf("after the prune, incomplete uploads %v, want %v", got, want)
	}
	f.checkDownloads(t, 1)
}

// An orphan history entry (never served) naming another build must not
// take the place of the build deploy rollback goes back to.
func TestPruneRollbackTargetPastAnOrphan(t *testing.T) {
	f := newFixture(t, fileStore(t))
	ctx := context.Background()
	f.upload(t, "production", version(1)) // build 1, seq 1
	f.upload(t, "production", version(2)) // build 2, seq 2
	f.upload(t, "beta", version(3))       // build 3
	orphan := *f.pointer(t, "production")
	orphan.Sequence, orphan.Build, orphan.Previous = 3, f.pointer(t, "beta").Build, &manifest.Link{Sequence: 2, SHA256: strings.Repeat("0", 64)}
	env, err := manifest.Sign(manifest.TypeLatest, orphan, f.user)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Put(ctx, manifest.HistoryKey("retailer", "production", 3), bytes.NewReader(env.Marshal()), store.PutOptions{CreateOnly: true}); err != nil {
		t.Fatal(err)
	}
	f.upload(t, "production", version(4)) // build 4, seq 4, linked to 2
	res := f.prune(t, publish.PruneOptions{Keep: 1, Grace: -1})
	if !slices.Contains(res.Kept, 2) {
		t.Errorf("kept builds %v, want 2, the build production rolls back to", res.Kept)
	}
	target := f.rollbackTarget(t, "production")
	if _, err := f.publisher().ReadBuild(ctx, "retailer", target.Build.Number); err != nil {
		t.Errorf("rollback target build %d after the prune: %v", target.Build.Number, err)
	}
}

// deniedUploads is a store whose incomplete uploads cannot be listed or
// aborted, as with credentials from before prune needed those calls.
type deniedUploads struct{ store.Store }

func (deniedUploads) Uploads(context.Context, string) ([]store.Upload, error) {
	return nil, errors.New("access denied")
}

func (deniedUploads) AbortUpload(context.Context, store.Upload) error {
	return errors.New("access denied")
}

// A prune whose credentials may not list incomplete uploads still removes
// what it may, and says what it left.
func TestPruneWithoutMultipartRights(t *testing.T) {
	f := newFixture(t, fileStore(t))
	for n := 1; n <= 4; n++ {
		f.upload(t, "production", version(n))
	}
	p := f.publisher()
	p.Store = deniedUploads{f.store}
	res, err := p.Prune(context.Background(), publish.PruneOptions{App: "retailer", Keep: 1, Grace: -1})
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if !slices.Equal(res.Builds, []int64{1, 2}) {
		t.Errorf("removed builds %v, want 1, 2", res.Builds)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "s3:ListBucketMultipartUploads") {
		t.Errorf("warnings %q, want one naming the permission", res.Warnings)
	}
}
