package sqlite

// Schema versions are PRAGMA user_version: 2 had events and floors; 3
// adds the marks, the hourly counts (filled from the events) and halts; 4
// the broken marks (filled from the events), an index of retry failures and
// the channels devices chose; 5 the client network of cohort marks, which
// count toward a candidate's health (filled from the seen marks, each
// device a network of its own, as they counted before).
const schemaVersion = 5

const schemaV2 = `
CREATE TABLE IF NOT EXISTS events (
	app            TEXT    NOT NULL,
	device         TEXT    NOT NULL,
	action         TEXT    NOT NULL,
	version        TEXT    NOT NULL,
	ts             INTEGER NOT NULL,
	number         INTEGER NOT NULL DEFAULT 0,
	old_version    TEXT    NOT NULL DEFAULT '',
	platform       TEXT    NOT NULL DEFAULT '',
	plugin_version TEXT    NOT NULL DEFAULT '',
	source         TEXT    NOT NULL DEFAULT '',
	received       INTEGER NOT NULL,
	PRIMARY KEY (app, device, action, version, ts)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS floors (
	name    TEXT    PRIMARY KEY, -- "acl", or app "/" channel
	version INTEGER NOT NULL     -- the highest ACL version or channel sequence verified
) WITHOUT ROWID;
`

const schemaV3 = `
DROP INDEX IF EXISTS events_by_build;
DROP INDEX IF EXISTS events_update_fail;
CREATE INDEX IF NOT EXISTS events_received ON events (received);
CREATE TABLE marks (
	app     TEXT    NOT NULL,
	version TEXT    NOT NULL,
	device  TEXT    NOT NULL,
	kind    TEXT    NOT NULL, -- seen, completed, failed
	hour    INTEGER NOT NULL, -- first hour, milliseconds since the epoch
	PRIMARY KEY (app, version, device, kind)
) WITHOUT ROWID;
CREATE TABLE hourly (
	app                 TEXT    NOT NULL,
	version             TEXT    NOT NULL,
	hour                INTEGER NOT NULL,
	number              INTEGER NOT NULL,
	checks              INTEGER NOT NULL,
	downloads_started   INTEGER NOT NULL,
	downloads_completed INTEGER NOT NULL,
	downloads_failed    INTEGER NOT NULL,
	updates_failed      INTEGER NOT NULL,
	devices             INTEGER NOT NULL,
	installs            INTEGER NOT NULL,
	PRIMARY KEY (app, hour, version)
) WITHOUT ROWID;
CREATE TABLE halts (
	app     TEXT    NOT NULL,
	channel TEXT    NOT NULL,
	rollout TEXT    NOT NULL,
	reason  TEXT    NOT NULL,
	at      INTEGER NOT NULL,
	PRIMARY KEY (app, channel, rollout)
) WITHOUT ROWID;
INSERT INTO marks (app, version, device, kind, hour)
	SELECT app, version, device, 'seen', MIN(received) / 3600000 * 3600000 FROM events GROUP BY app, version, device;
INSERT INTO marks (app, version, device, kind, hour)
	SELECT app, version, device, 'completed', MIN(received) / 3600000 * 3600000 FROM events
	WHERE action = 'download_complete' GROUP BY app, version, device;
INSERT INTO marks (app, version, device, kind, hour)
	SELECT app, version, device, 'failed', MIN(received) / 3600000 * 3600000 FROM events
	WHERE action = 'update_fail' GROUP BY app, version, device;
INSERT INTO marks (app, version, device, kind, hour)
	SELECT app, version, device, 'installed', MIN(received) / 3600000 * 3600000 FROM events
	WHERE action IN ('download_complete', 'set') GROUP BY app, version, device;
INSERT INTO hourly SELECT app, version, received / 3600000 * 3600000, MAX(number),
	SUM(action = 'check'), SUM(action = 'download_start'), 0,
	SUM(action IN ('download_fail', 'checksum_fail', 'checksum_required', 'unzip_fail', 'decrypt_fail',
		'windows_path_fail', 'canonical_path_fail', 'low_mem_fail', 'insufficient_disk_space')
		OR (action LIKE 'download_manifest_%' AND action LIKE '%fail')),
	SUM(action IN ('update_fail', 'set_fail')), 0, 0
	FROM events GROUP BY 1, 2, 3;
UPDATE hourly SET
	devices = (SELECT COUNT(*) FROM marks m WHERE m.app = hourly.app AND m.version = hourly.version AND m.hour = hourly.hour AND m.kind = 'seen'),
	downloads_completed = (SELECT COUNT(*) FROM marks m WHERE m.app = hourly.app AND m.version = hourly.version AND m.hour = hourly.hour AND m.kind = 'completed'),
	installs = (SELECT COUNT(*) FROM marks m WHERE m.app = hourly.app AND m.version = hourly.version AND m.hour = hourly.hour AND m.kind = 'installed');
PRAGMA user_version = 3;
`

const schemaV4 = `
INSERT OR IGNORE INTO marks (app, version, device, kind, hour)
	SELECT app, version, device, 'broken', MIN(received) / 3600000 * 3600000 FROM events
	WHERE action IN ('update_fail', 'set_fail', 'checksum_fail', 'unzip_fail') OR action LIKE 'app_crash%'
	GROUP BY app, version, device;
CREATE INDEX events_retry ON events (app, device, version) WHERE action IN ('set_fail', 'checksum_fail', 'unzip_fail');
CREATE TABLE device_channels (
	app     TEXT NOT NULL,
	device  TEXT NOT NULL,
	channel TEXT NOT NULL,
	PRIMARY KEY (app, device)
) WITHOUT ROWID;
PRAGMA user_version = 4;
`

const schemaV5 = `
ALTER TABLE marks ADD COLUMN grp TEXT NOT NULL DEFAULT ''; -- of a cohort mark: the client's network, '' if not known
INSERT OR IGNORE INTO marks (app, version, device, kind, hour)
	SELECT app, version, device, 'cohort', hour FROM marks WHERE kind = 'seen';
PRAGMA user_version = 5;
`
