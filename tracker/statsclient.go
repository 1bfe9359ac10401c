package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrStatsRefused is in the chain of a GetStats error when the tracker
// refused the token.
var ErrStatsRefused = errors.New("the tracker refused the stats token")

// refusedError is a refusal of the stats token, with the tracker's words.
type refusedError struct{ error }

func (refusedError) Is(target error) bool { return target == ErrStatsRefused }

// GetStats fetches the stats of app (every app if "") from the tracker at
// baseURL, for `deploy stats`. A nil client means http.DefaultClient.
// An error answer of the tracker is returned with its message.
func GetStats(ctx context.Context, client *http.Client, baseURL, token, app string) (*Stats, error) {
	if client == nil {
		client = http.DefaultClient
	}
	u := strings.TrimRight(baseURL, "/") + StatsPath
	if app != "" {
		u += "?app=" + url.QueryEscape(app)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("stats: read %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("stats: %s from %s", resp.Status, u)
		var e ErrorResponse
		if json.Unmarshal(body, &e) == nil && e.Message != "" {
			err = fmt.Errorf("stats: %s: %s", resp.Status, e.Message)
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			err = refusedError{err}
		}
		return nil, err
	}
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("stats: decode answer of %s: %w", u, err)
	}
	return &st, nil
}
