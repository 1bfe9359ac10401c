package manifest

import "testing"

func TestParseLatestKey(t *testing.T) {
	for _, tc := range []struct {
		key, app, channel string
		ok                bool
	}{
		{LatestKey("demo", "production"), "demo", "production", true},
		{LatestKey("a.b", "beta-2"), "a.b", "beta-2", true},
		{"apps/demo/channels/production/history/3.json", "", "", false},
		{"apps/demo/builds/1.json", "", "", false},
		{"apps/Demo/channels/production/latest.json", "", "", false},
		{"apps/demo/channels/a/b/latest.json", "", "", false},
		{"other/demo/channels/production/latest.json", "", "", false},
	} {
		app, channel, ok := ParseLatestKey(tc.key)
		if app != tc.app || channel != tc.channel || ok != tc.ok {
			t.Errorf("ParseLatestKey(%q) = %q, %q, %v; want %q, %q, %v", tc.key, app, channel, ok, tc.app, tc.channel, tc.ok)
		}
	}
}
