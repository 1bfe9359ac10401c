-- Raw events: the key makes a resent event count once; received (the
-- tracker's clock, milliseconds) is what retention prunes by, with a BRIN
-- index that stays small on an append-only table.
CREATE TABLE events (
	app            text   NOT NULL,
	device         text   NOT NULL,
	action         text   NOT NULL,
	version        text   NOT NULL,
	ts             bigint NOT NULL,
	number         bigint NOT NULL DEFAULT 0,
	old_version    text   NOT NULL DEFAULT '',
	platform       text   NOT NULL DEFAULT '',
	plugin_version text   NOT NULL DEFAULT '',
	source         text   NOT NULL DEFAULT '',
	received       bigint NOT NULL,
	PRIMARY KEY (app, device, action, version, ts)
);
CREATE INDEX events_received ON events USING brin (received);

-- One row per device, build and kind (seen, completed, failed).
CREATE TABLE marks (
	app     text   NOT NULL,
	version text   NOT NULL,
	device  text   NOT NULL,
	kind    text   NOT NULL,
	hour    bigint NOT NULL,
	PRIMARY KEY (app, version, device, kind)
);

-- Counts per build and hour of receipt: what stats read.
CREATE TABLE hourly (
	app                 text   NOT NULL,
	version             text   NOT NULL,
	hour                bigint NOT NULL,
	number              bigint NOT NULL,
	checks              bigint NOT NULL,
	downloads_started   bigint NOT NULL,
	downloads_completed bigint NOT NULL,
	downloads_failed    bigint NOT NULL,
	updates_failed      bigint NOT NULL,
	devices             bigint NOT NULL,
	installs            bigint NOT NULL,
	PRIMARY KEY (app, hour, version)
);

CREATE TABLE floors (
	name    text   PRIMARY KEY,
	version bigint NOT NULL
);

CREATE TABLE halts (
	app     text   NOT NULL,
	channel text   NOT NULL,
	rollout text   NOT NULL,
	reason  text   NOT NULL,
	at      bigint NOT NULL,
	PRIMARY KEY (app, channel, rollout)
);
