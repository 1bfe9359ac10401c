-- Release rules: the failures that count against a rollout's candidate
-- (marks of kind broken, back-filled from the events), the retries each
-- device made of a build (a partial index), and the channels devices chose.
INSERT INTO marks (app, version, device, kind, hour)
	SELECT app, version, device, 'broken', MIN(received) / 3600000 * 3600000 FROM events
	WHERE action IN ('update_fail', 'set_fail', 'checksum_fail', 'unzip_fail') OR action LIKE 'app_crash%'
	GROUP BY app, version, device
	ON CONFLICT DO NOTHING;
CREATE INDEX events_retry ON events (app, device, version) WHERE action IN ('set_fail', 'checksum_fail', 'unzip_fail');
CREATE TABLE device_channels (
	app     text NOT NULL,
	device  text NOT NULL,
	channel text NOT NULL,
	PRIMARY KEY (app, device)
);
