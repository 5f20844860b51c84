# allhands %post ($1: 1 on install, 2 on upgrade): the user and directories
# (/usr/lib/allhands/setup-system, shared with the deb); enable, never start, the service on
# first install; after an upgrade, restart it if it was running so that the new binary
# migrates the store.
/usr/lib/allhands/setup-system
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" -eq 1 ]; then
    systemctl enable allhands.service >/dev/null 2>&1 || true
    /usr/lib/allhands/setup-system notice
elif [ -d /run/systemd/system ]; then
    systemctl try-restart allhands.service >/dev/null 2>&1 || true
fi
