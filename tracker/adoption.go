package tracker

import (
	"context"
	"time"
)

// installCount is how many devices installed a version of an app for the
// first time in the bucket starting at start.
type installCount struct {
	start   time.Time
	version string
	number  int64
	devices int64
}

// adoption counts first installs (download_complete from the seed's API or
// the plugin, or the plugin's set) per version of app in buckets of the
// given length, a whole number of hours aligned on the Unix epoch, by the
// time the tracker received them. It reads the state's hourly counts.
func (s *Server) adoption(ctx context.Context, app string, bucket time.Duration) ([]installCount, error) {
	hours, err := s.state.Hourly(ctx, app, time.UnixMilli(0), s.now().Add(time.Hour))
	if err != nil {
		return nil, err
	}
	type key struct {
		start   int64
		version string
	}
	idx := map[key]int{}
	var out []installCount
	for _, h := range hours {
		if h.Installs == 0 {
			continue
		}
		k := key{h.Hour.UnixMilli() - h.Hour.UnixMilli()%bucket.Milliseconds(), h.Version}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, installCount{start: time.UnixMilli(k.start).UTC(), version: h.Version})
		}
		out[i].number = max(out[i].number, h.Number)
		out[i].devices += h.Installs
	}
	return out, nil
}
