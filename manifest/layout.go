package manifest

import "strings"

// AppsPrefix is the store prefix under which every app's objects live.
const AppsPrefix = "apps/"

// ParseLatestKey returns the app and channel of a key made by [LatestKey]
// ("apps/<app>/channels/<channel>/latest.json"), and false for any other
// key or one whose names are invalid.
func ParseLatestKey(key string) (app, channel string, ok bool) {
	rest, ok := strings.CutPrefix(key, AppsPrefix)
	if !ok {
		return "", "", false
	}
	app, rest, ok = strings.Cut(rest, "/channels/")
	if !ok {
		return "", "", false
	}
	channel, ok = strings.CutSuffix(rest, "/latest.json")
	if !ok || CheckName("app", app) != nil || CheckName("channel", channel) != nil {
		return "", "", false
	}
	return app, channel, true
}
