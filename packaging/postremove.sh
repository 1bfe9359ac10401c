#!/bin/sh
# After removal: systemd forgets the unit. The user, the settings and the
# events in /var/lib/deploy-tracker stay, as with most services.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
