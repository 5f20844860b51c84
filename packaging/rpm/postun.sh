# allhands %postun: erasing the package keeps /var/lib/allhands, /var/log/allhands,
# /var/backups/allhands and /etc/allhands (rpm has no purge; OPERATIONS.md says how to delete
# them).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
