#!/bin/sh
# After install or upgrade: the system user the tracker runs as, then
# systemd told of the unit. The service is not started here: it needs
# /etc/deploy/tracker.env filled in first (see the README).
set -e
if ! getent group deploy-tracker >/dev/null; then
	groupadd --system deploy-tracker
fi
if ! getent passwd deploy-tracker >/dev/null; then
	nologin=$(command -v nologin || echo /usr/sbin/nologin)
	useradd --system --gid deploy-tracker --home-dir /var/lib/deploy-tracker --no-create-home \
		--shell "$nologin" --comment "deploy tracker" deploy-tracker
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	systemctl try-restart deploy-tracker.service || true
fi
