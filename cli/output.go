package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/cartona/deploy/publish"
)

// writeJSON prints v as indented JSON, for scripts.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// progress shows how far the long steps of an upload are, on stderr: on a
// terminal, a one-line bar redrawn in place; elsewhere (a CI log, a file),
// a plain line now and then, and none for work done within progressQuiet,
// so that small uploads stay quiet.
type progress struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	last  time.Time
	step  string // the step last drawn, or last printed a line for
	drawn bool

	start time.Time // the first update
	line  string    // the last line printed
}

// Off a terminal, progress lines start after progressQuiet and come at
// most every progressEvery (and once more when a step reported on ends).
const (
	progressQuiet = 2 * time.Second
	progressEvery = 5 * time.Second
)

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w), now: time.Now}
}

func (p *progress) update(s publish.Progress) {
	if s.Total == 0 {
		return
	}
	if !p.tty {
		p.printLine(s)
		return
	}
	now := p.now()
	if s.Step == p.step && now.Sub(p.last) < 100*time.Millisecond && s.Done < s.Total {
		return
	}
	p.last, p.step = now, s.Step
	const width = 30
	n := int(s.Done * width / s.Total)
	size := humanBytes(s.Total)
	if s.Files {
		size = fmt.Sprintf("%d files", s.Total)
	}
	fmt.Fprintf(p.w, "\r\033[K%s [%s%s] %3d%% %s", s.Step, strings.Repeat("=", n), strings.Repeat(" ", width-n), s.Done*100/s.Total, size)
	p.drawn = true
}

// printLine prints s as a line such as "zipping: 40.0 MB of 115.0 MB (35%)",
// rate-limited.
func (p *progress) printLine(s publish.Progress) {
	now := p.now()
	if p.start.IsZero() {
		p.start = now
	}
	ends := s.Done >= s.Total && s.Step == p.step // the end of a step reported on
	if now.Sub(p.start) < progressQuiet || (!ends && !p.last.IsZero() && now.Sub(p.last) < progressEvery) {
		return
	}
	line := fmt.Sprintf("%s: %s of %s (%d%%)", s.Step, humanBytes(s.Done), humanBytes(s.Total), s.Done*100/s.Total)
	if s.Files {
		line = fmt.Sprintf("%s: %d of %d files (%d%%)", s.Step, s.Done, s.Total, s.Done*100/s.Total)
	}
	if line == p.line {
		return
	}
	fmt.Fprintln(p.w, line)
	p.last, p.step, p.line = now, s.Step, line
}

func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// awsConfig loads the AWS SDK's default configuration chain.
func awsConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("aws configuration: %w", err)
	}
	return cfg, nil
}
