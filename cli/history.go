package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cartona/deploy/manifest"
	"github.com/cartona/deploy/publish"
)

type historyOptions struct {
	*env
	storeOptions
	App     string `param:"app,required"`
	Channel string `param:"channel"`
	JSON    bool   `param:"json"`
}

// NewCmdHistory returns `deploy history`.
func NewCmdHistory(e *env) *cobra.Command {
	return newCommand(e, &cobra.Command{
		Use:   "history app=NAME [channel=production]",
		Short: "List every pointer a channel had, each verified, and check the chain",
		Long: `List every latest.json a channel ever had, newest first, each verified
against the ACL: who moved the channel to which build, when and why
(notes=). Each pointer links to the one it replaced; the chain from the
current latest.json back must have no gaps, else the command fails.`,
		Example: "  deploy history app=retailer channel=production\n  deploy history app=retailer --json",
	}, &historyOptions{env: e}, runHistory)
}

// historyRow is one line of `deploy history`.
type historyRow struct {
	Sequence int64     `json:"sequence"`
	Issued   time.Time `json:"issued,omitzero"`
	By       string    `json:"by,omitempty"`
	Change   string    `json:"change"`
	Notes    string    `json:"notes,omitempty"`
	Served   bool      `json:"served"`
	Problem  string    `json:"problem,omitempty"`
	// Pointer is the verified pointer (its candidate removed if halted).
	Pointer *manifest.Latest `json:"pointer,omitempty"`
	Halted  bool             `json:"halted,omitempty"`
}

func runHistory(ctx context.Context, o *historyOptions) error {
	if err := manifest.CheckName("app", o.App); err != nil {
		return usageError{err}
	}
	st, acl, err := o.verifiedACL(ctx)
	if err != nil {
		return err
	}
	h, err := publish.ReadHistory(ctx, st, acl, o.App, o.Channel)
	if err != nil {
		return err
	}
	if len(h.Entries) == 0 {
		return fmt.Errorf("%s has no history for channel %s; see its channels with `deploy channel list app=%s`", o.App, o.Channel, o.App)
	}
	rows := historyRows(h)
	doc := map[string]any{"app": o.App, "channel": o.Channel, "entries": rows, "gap": h.Gap, "deleted": h.Deleted, "ok": h.Gap == ""}
	var gap error
	if h.Gap != "" {
		gap = fmt.Errorf("the history of %s %s has a gap: %w", o.App, o.Channel, &manifest.Error{Rule: manifest.RuleHistoryGap, Detail: h.Gap})
	}
	switch {
	case o.JSON && gap != nil:
		return resultError{gap, doc} // one JSON document: the error, with the entries
	case o.JSON:
		return writeJSON(o.io.Out, doc)
	}
	if h.Deleted {
		fmt.Fprintf(o.io.Out, "channel %s of %s was deleted after sequence %d; devices on it keep their build\n", o.Channel, o.App, h.Entries[0].Sequence)
	}
	printHistory(o.io.Out, rows, h.Below)
	if gap == nil {
		fmt.Fprintf(o.io.Out, "chain OK: %d pointers, each linked to the one before\n", len(h.Chain))
	}
	return gap
}

// historyRows describes each entry against the served entry before it.
func historyRows(h *publish.History) []historyRow {
	rows := make([]historyRow, len(h.Entries))
	var prev *manifest.Latest // the served pointer before, walking oldest first
	for i := len(h.Entries) - 1; i >= 0; i-- {
		e := h.Entries[i]
		r := historyRow{Sequence: e.Sequence, Served: e.Served, Problem: e.Problem, Pointer: e.Pointer}
		if l := e.Pointer; l != nil {
			r.Issued, r.By, r.Notes, r.Halted, r.Change = l.Issued, l.By, l.Notes, l.Halted != nil, changeOf(prev, l)
			if l.Halted != nil {
				r.Issued, r.By, r.Notes = l.Halted.Issued, "(halt)", l.Halted.Reason
			}
			if e.Served {
				prev = l
			}
		}
		rows[i] = r
	}
	return rows
}

// changeOf says what l changed from prev.
func changeOf(prev, l *manifest.Latest) string {
	if l.Halted != nil {
		if prev != nil && prev.Candidate != nil {
			return fmt.Sprintf("halted candidate %d", prev.Candidate.Build.Number)
		}
		return "halted the candidate"
	}
	if prev == nil {
		return "build " + buildName(l.Build)
	}
	var parts []string
	if prev.Build.ID != l.Build.ID {
		parts = append(parts, fmt.Sprintf("build %d -> %s", prev.Build.Number, buildName(l.Build)))
	}
	pc, c := prev.Candidate, l.Candidate
	switch {
	case c != nil && (pc == nil || pc.Rollout != c.Rollout):
		parts = append(parts, fmt.Sprintf("rollout of build %s at %d%%", buildName(c.Build), c.Percent))
	case c != nil && pc.Percent != c.Percent:
		parts = append(parts, fmt.Sprintf("rollout of build %d %d%% -> %d%%", c.Build.Number, pc.Percent, c.Percent))
	case c != nil && pc.Paused != c.Paused:
		parts = append(parts, map[bool]string{true: "paused", false: "resumed"}[c.Paused]+fmt.Sprintf(" the rollout of build %d", c.Build.Number))
	case c == nil && pc != nil && l.Build.ID != pc.Build.ID:
		parts = append(parts, fmt.Sprintf("dropped candidate %d", pc.Build.Number))
	}
	if prev.Settings != l.Settings {
		parts = append(parts, fmt.Sprintf("self_assign=%d", b2i(l.Settings.SelfAssign)))
	}
	if len(parts) == 0 {
		return "signed again"
	}
	return strings.Join(parts, "; ")
}

// printHistory prints rows; those under below (a gap's) could not be
// followed on the chain.
func printHistory(w interface{ Write([]byte) (int, error) }, rows []historyRow, below int64) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tDATE\tBY\tCHANGE\tNOTES")
	for _, r := range rows {
		if r.Pointer == nil {
			fmt.Fprintf(tw, "%d\t-\t-\tDOES NOT VERIFY: %s\t\n", r.Sequence, r.Problem)
			continue
		}
		change := r.Change
		switch {
		case !r.Served && r.Sequence < below:
			change += " (past the gap: not checked against the chain)"
		case !r.Served:
			change += " (never served: not on the chain)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", r.Sequence, r.Issued.Local().Format(time.DateTime), r.By, change, firstLine(r.Notes))
	}
	tw.Flush()
}
