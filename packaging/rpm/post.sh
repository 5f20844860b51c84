# allhands %post ($1: 1 on install, 2 on upgrade): create the service user and directories,
# enable (never start) the service on first install, restart it after an upgrade if it was
# running so that the new binary migrates the store.
if command -v systemd-sysusers >/dev/null 2>&1; then
    systemd-sysusers /usr/lib/sysusers.d/allhands.conf
elif ! getent passwd allhands >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/allhands --no-create-home \
        --shell /sbin/nologin --comment "AllHands customer service" allhands
fi
# systemd-tmpfiles needs /proc, which an image builder's chroot may lack: then by hand.
if ! systemd-tmpfiles --create /usr/lib/tmpfiles.d/allhands.conf >/dev/null 2>&1; then
    install -d -m 0700 -o allhands -g allhands /var/lib/allhands /var/backups/allhands
    install -d -m 0750 -o allhands -g allhands /var/log/allhands
    install -d -m 0750 -o root -g allhands /etc/allhands
    chown root:allhands /etc/allhands/allhands.toml
    chmod 0640 /etc/allhands/allhands.toml
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" -eq 1 ]; then
    systemctl enable allhands.service >/dev/null 2>&1 || true
    cat <<'MESSAGE'

AllHands is installed and enabled, not started. Review /etc/allhands/allhands.toml, then:

    systemctl start allhands
    cat /var/lib/allhands/initial-admin-password     # the first administrator's password

and open https://<this server>:8443/ (the certificate is self-signed until you configure one).
Guide: /usr/share/doc/allhands/OPERATIONS.md

MESSAGE
elif [ -d /run/systemd/system ]; then
    systemctl try-restart allhands.service >/dev/null 2>&1 || true
fi
