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

// progress draws a one-line progress bar on a terminal, and nothing
// elsewhere (CI logs stay quiet).
type progress struct {
	w     io.Writer
	on    bool
	last  time.Time
	step  string // the step last drawn
	drawn bool
}

func newProgress(w io.Writer) *progress { return &progress{w: w, on: isTerminal(w)} }

func (p *progress) update(s publish.Progress) {
	if !p.on || s.Total == 0 || (s.Step == p.step && time.Since(p.last) < 100*time.Millisecond && s.Done < s.Total) {
		return
	}
	p.last, p.step = time.Now(), s.Step
	const width = 30
	n := int(s.Done * width / s.Total)
	size := humanBytes(s.Total)
	if s.Files {
		size = fmt.Sprintf("%d files", s.Total)
	}
	fmt.Fprintf(p.w, "\r\033[K%s [%s%s] %3d%% %s", s.Step, strings.Repeat("=", n), strings.Repeat(" ", width-n), s.Done*100/s.Total, size)
	p.drawn = true
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
