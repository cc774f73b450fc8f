#!/usr/bin/env bash
# Upgrade one cabinet to a new lockerd release; for an operator's rollout tool.
#
# Usage: deploy/upgrade.sh RELEASE_DIR
#   RELEASE_DIR holds the new release's locks (requirements-pi.lock, the cabinet's set with
#   lgpio, else requirements.lock) and either one lockerd-*.whl or the source tree
#   (pyproject.toml). Run as root on the cabinet.
#
# Steps: stop the daemon -> back up the state directory's log and evidence files as they are
# (the daemon is stopped, so they are consistent; -wal/-shm included, owners and modes kept;
# this works from every release, 0.1.0 included, which has no `lockerctl backup`) -> keep the
# current venv as $VENV.prev -> install the new locked set into a fresh venv (hash-checked
# wheels) -> start (the log migrates on start) -> wait for ready/degraded with the new version
# -> verify the chain. If the new release does not start or verify: stop it, keep its files in
# the backup directory, put the backup's files and the previous venv back, start and verify.
#
# Exit codes (stable: rollout tools branch on them):
#   0  upgraded: the new release runs and its log verifies
#   1  usage or preflight failure: nothing was changed
#   2  the backup failed: nothing else was changed, the old release runs again
#   3  the new release could not be installed: the old release runs again, log untouched
#   4  the new release did not start or verify: rolled back to the old release and the backup
#   5  the rollback failed too: the cabinet needs a technician (see the log lines above)
#
# Environment (defaults for the systemd install in deploy/systemd/README.md):
#   VENV=/opt/lockerd/venv  CONFIG=/etc/lockerd/lockerd.toml  SERVICE=lockerd
#   BACKUP_DIR=/var/backups/lockerd  READY_TIMEOUT_S=120  PYTHON=python3  SYSTEMCTL=systemctl
set -uo pipefail

VENV=${VENV:-/opt/lockerd/venv}
CONFIG=${CONFIG:-/etc/lockerd/lockerd.toml}
SERVICE=${SERVICE:-lockerd}
BACKUP_DIR=${BACKUP_DIR:-/var/backups/lockerd}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-120}
PYTHON=${PYTHON:-python3}
SYSTEMCTL=${SYSTEMCTL:-systemctl}

say() { echo "upgrade: $*" >&2; }

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  say "usage: $0 RELEASE_DIR (holding requirements.lock and a lockerd wheel or source tree)"
  exit 1
fi
release=$(cd "$1" && pwd)
if [ "$(id -u)" != 0 ]; then say "run as root"; exit 1; fi
lock="$release/requirements-pi.lock"
[ -f "$lock" ] || lock="$release/requirements.lock"
if [ ! -f "$lock" ]; then say "$release has no requirements.lock"; exit 1; fi
shopt -s nullglob
wheels=("$release"/lockerd-*.whl)
if [ ${#wheels[@]} -eq 1 ]; then
  package=${wheels[0]}
elif [ ${#wheels[@]} -eq 0 ] && [ -f "$release/pyproject.toml" ]; then
  package=$release
else
  say "$release needs exactly one lockerd-*.whl or a pyproject.toml"; exit 1
fi
if [ ! -x "$VENV/bin/lockerctl" ]; then say "no current install in $VENV"; exit 1; fi
# The state directory and log name from the config (the defaults lockerd uses when unset).
read -r state_dir db_name < <("$PYTHON" - "$CONFIG" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    cfg = tomllib.load(fh)
print(cfg.get("paths", {}).get("state_dir", "/var/lib/lockerd"),
      cfg.get("oplog", {}).get("db_name", "oplog.db"))
PY
) || { say "cannot read $CONFIG"; exit 1; }
if [ ! -f "$state_dir/$db_name" ]; then say "no log at $state_dir/$db_name"; exit 1; fi
files=()
for base in "$db_name" evidence.db; do
  for suffix in "" -wal -shm; do
    [ -e "$state_dir/$base$suffix" ] && files+=("$base$suffix")
  done
done

# 1. stop, then back up the files as the stopped daemon left them
"$SYSTEMCTL" stop "$SERVICE"
backup="$BACKUP_DIR/lockerd-$(date -u +%Y%m%dT%H%M%SZ)"
if ! { install -d -m 0700 "$BACKUP_DIR" && mkdir -m 0700 "$backup" &&
       (cd "$state_dir" && cp -a -- "${files[@]}" "$backup/") && sync; }; then
  say "backup failed; starting the old release again"
  "$SYSTEMCTL" start "$SERVICE"
  exit 2
fi
say "backup: $backup (${files[*]})"

# 2. keep the current venv, install the new locked set
rm -rf "$VENV.prev"
mv "$VENV" "$VENV.prev"
start_old() {
  rm -rf "$VENV"
  mv "$VENV.prev" "$VENV" && "$SYSTEMCTL" start "$SERVICE"
}
if ! { "$PYTHON" -m venv "$VENV" &&
       "$VENV/bin/pip" install -q --disable-pip-version-check --require-hashes \
         --only-binary=:all: -r "$lock" &&
       "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "$package" &&
       "$VENV/bin/pip" check; }; then
  say "installing the new release failed; starting the old one again"
  if start_old; then exit 3; fi
  say "the old release did not start again"; exit 5
fi
new_version=$("$VENV/bin/lockerd" --version | awk '{print $2}')

# 3. start (the log migrates on start) and verify
ready() {
  local deadline=$((SECONDS + READY_TIMEOUT_S)) state
  while [ $SECONDS -lt $deadline ]; do
    state=$("$VENV/bin/lockerctl" -c "$CONFIG" status --json 2>/dev/null |
            "$VENV/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print(d["state"], d["version"])' 2>/dev/null)
    case "$state" in
      "ready $1"|"degraded $1") return 0 ;;
    esac
    sleep 2
  done
  return 1
}
verified() { "$VENV/bin/lockerctl" -c "$CONFIG" verify-log; }

if "$SYSTEMCTL" start "$SERVICE" && ready "$new_version" && verified; then
  say "lockerd $new_version runs and its log verifies; previous release kept in $VENV.prev"
  exit 0
fi

# 4. roll back: previous release, log and evidence from the backup
say "lockerd $new_version did not start or verify; rolling back"
"$SYSTEMCTL" stop "$SERVICE"
failed="$backup/failed-$new_version"
mkdir -m 0700 "$failed"
for base in "$db_name" evidence.db; do
  for suffix in "" -wal -shm; do
    [ -e "$state_dir/$base$suffix" ] && mv -- "$state_dir/$base$suffix" "$failed/"
  done
done
rm -rf "$VENV.failed"
mv "$VENV" "$VENV.failed"
mv "$VENV.prev" "$VENV"
old_version=$("$VENV/bin/lockerd" --version | awk '{print $2}')
if (cd "$backup" && cp -a -- "${files[@]}" "$state_dir/") &&
   "$SYSTEMCTL" start "$SERVICE" && ready "$old_version" && verified; then
  say "rolled back to lockerd $old_version and $backup; the failed release is in $VENV.failed,"
  say "the log it left in $failed"
  exit 4
fi
say "rollback failed: the cabinet needs a technician (backup $backup)"
exit 5
