package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/publish"
)

type pruneOptions struct {
	*env
	storeOptions
	App       string        `param:"app,required"`
	Keep      int           `param:"keep"`
	OlderThan time.Duration `param:"older_than"`
	Grace     time.Duration `param:"grace"`
	DryRun    bool          `param:"dry_run"`
	JSON      bool          `param:"json"`
}

// NewCmdPrune returns `deploy prune`.
func NewCmdPrune(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "prune app=NAME [keep=N] [older_than=DURATION] [dry_run=1]",
		Short: "Remove the builds, bundles and files that nothing needs any more",
		Long: `Remove an app's build records, bundles, file objects and file manifests
(with the patches that make them) that no channel points at (stable, candidate or fallback), that are not
among the newest keep builds, and, with older_than, that were recorded
longer ago and that no channel history entry of that period names.
On S3, it also aborts the incomplete multipart uploads that uploads killed
mid-way left under the app, once older than grace (default 1h).
Uploads running at the same time keep what they are about to use.
dry_run=1 lists what would go and how many bytes, removing nothing.`,
		Example: "  deploy prune app=retailer keep=10 dry_run=1\n  deploy prune app=retailer keep=5 older_than=720h",
	}, &pruneOptions{env: e}, runPrune)
}

func runPrune(ctx context.Context, opts *pruneOptions) error {
	st, err := opts.store(ctx)
	if err != nil {
		return err
	}
	p := &publish.Publisher{Store: st}
	grace := opts.Grace
	if grace == 0 {
		grace = -1 // grace=0 asks for none
	}
	res, err := p.Prune(ctx, publish.PruneOptions{App: opts.App, Keep: opts.Keep, OlderThan: opts.OlderThan, Grace: grace, DryRun: opts.DryRun})
	if res == nil {
		return err
	}
	log := opts.log()
	for _, w := range res.Warnings {
		log.Warn().Msg(w)
	}
	switch {
	case opts.JSON && err == nil:
		return writeJSON(opts.io.Out, res)
	case !opts.JSON:
		printPrune(opts.io.Out, res)
	}
	return partial(err, res)
}

func printPrune(w io.Writer, res *publish.PruneResult) {
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	builds := make([]string, len(res.Builds))
	for i, n := range res.Builds {
		builds[i] = fmt.Sprint(n)
	}
	switch {
	case len(res.Items) > 0:
		fmt.Fprintf(w, "%s %d objects of %s (%s)", verb, len(res.Items), res.App, humanBytes(res.Bytes))
		if len(builds) > 0 {
			fmt.Fprintf(w, ", builds %s", strings.Join(builds, ", "))
		}
		fmt.Fprintln(w)
	case len(res.Uploads) == 0:
		fmt.Fprintf(w, "%s: nothing to remove\n", res.App)
	}
	if len(res.Uploads) > 0 {
		abort := "aborted"
		if res.DryRun {
			abort = "would abort"
		}
		var size int64
		for _, u := range res.Uploads {
			size += u.Size
		}
		what := "incomplete uploads"
		if len(res.Uploads) == 1 {
			what = "incomplete upload"
		}
		fmt.Fprintf(w, "%s %d %s of %s (%s), left by interrupted uploads\n", abort, len(res.Uploads), what, res.App, humanBytes(size))
	}
	if res.DryRun {
		for _, it := range res.Items {
			fmt.Fprintf(w, "  %s  %s\n", it.Key, humanBytes(it.Size))
		}
		for _, u := range res.Uploads {
			fmt.Fprintf(w, "  %s  %s  (incomplete upload started %s)\n", u.Key, humanBytes(u.Size), u.Started.Format(time.RFC3339))
		}
	}
	if res.Spared > 0 {
		fmt.Fprintf(w, "  kept %d objects that a running upload is about to use\n", res.Spared)
	}
}
