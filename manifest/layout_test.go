package manifest

import "testing"

func TestLayoutKeysRoundTrip(t *testing.T) {
	if got := LatestKey("shop", DefaultChannel); got != "apps/shop/channels/production/latest.json" {
		t.Fatalf("LatestKey = %q", got)
	}
	if n, ok := ParseBuildKey("shop", BuildKey("shop", 42)); !ok || n != 42 {
		t.Fatalf("ParseBuildKey(BuildKey(42)) = %d, %v", n, ok)
	}
	if n, ok := ParseHistoryKey("shop", "beta", HistoryKey("shop", "beta", 7)); !ok || n != 7 {
		t.Fatalf("ParseHistoryKey(HistoryKey(7)) = %d, %v", n, ok)
	}
	if got := HistoryKey("shop", "beta", 7); got != "apps/shop/channels/beta/history/7.json" {
		t.Fatalf("HistoryKey = %q", got)
	}
	if got := FileKey("shop", "ab", ""); got != "apps/shop/files/ab" {
		t.Fatalf("FileKey = %q", got)
	}
	// sha256("1.0.0")
	if got := VersionKey("shop", "1.0.0"); got != "apps/shop/versions/92521fc3cbd964bdc9f584a991b89fddaa5754ed1cc96d6d42445338669c1305.json" {
		t.Fatalf("VersionKey = %q", got)
	}
}

func TestLayoutParsersRefuseOtherKeys(t *testing.T) {
	for _, key := range []string{
		"apps/shop/channels/a/b/latest.json",          // not a channel name
		"apps/shop/channels/Beta/latest.json",         // not a channel name
		"apps/shop/channels/beta/history/3.json",      // a history entry
		"apps/shop/channels/latest.json",              // no channel
		"apps/shop/channels/beta/latest.json.tmp",     // not latest.json
		"apps/shop/channels/../x/latest.json",         // not a name
		"apps/shop/channels/beta/history/latest.json", // nested
	} {
		if app, ch, ok := ParseLatestKey(key); ok {
			t.Errorf("ParseLatestKey(%q) = %q, %q, want refused", key, app, ch)
		}
	}
	for _, key := range []string{"apps/shop/builds/0.json", "apps/shop/builds/01.json", "apps/shop/builds/-1.json",
		"apps/shop/builds/x.json", "apps/shop/builds/9007199254740992.json", "apps/shop/builds/1.json.tmp", "apps/shop/builds/1/2.json"} {
		if n, ok := ParseBuildKey("shop", key); ok {
			t.Errorf("ParseBuildKey(%q) = %d, want refused", key, n)
		}
	}
}

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
