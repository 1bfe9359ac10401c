-- Cohort marks count toward a candidate's health, weighed by the client
-- network (grp) their device was first counted from. Devices seen before
-- count as before: each a network of its own ('').
ALTER TABLE marks ADD COLUMN grp text NOT NULL DEFAULT '';
INSERT INTO marks (app, version, device, kind, hour)
	SELECT app, version, device, 'cohort', hour FROM marks WHERE kind = 'seen'
	ON CONFLICT DO NOTHING;
