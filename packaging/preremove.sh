#!/bin/sh
# Before removal (not an upgrade: deb passes "upgrade", rpm a count of 1):
# stop and disable the tracker.
set -e
case "$1" in
remove | purge | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now deploy-tracker.service || true
	fi
	;;
esac
