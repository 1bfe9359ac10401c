-- Every tracker keeps the failed marks in memory: a new one is announced on
-- the deploy_failed channel as a JSON array [app, version, device], or as
-- an empty payload (read them all again) if that would be too long for a
-- notification.
CREATE FUNCTION deploy_failed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	payload text := json_build_array(NEW.app, NEW.version, NEW.device)::text;
BEGIN
	PERFORM pg_notify('deploy_failed', CASE WHEN octet_length(payload) < 7000 THEN payload ELSE '' END);
	RETURN NULL;
END
$$;
CREATE TRIGGER marks_failed_notify AFTER INSERT ON marks
	FOR EACH ROW WHEN (NEW.kind = 'failed') EXECUTE FUNCTION deploy_failed_notify();
