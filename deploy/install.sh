#!/usr/bin/env bash
# Install lockerd on a cabinet the way deploy/systemd/README.md describes, step by step.
#
# Usage (as root, from a checkout or an unpacked release):
#   deploy/install.sh                 install or repair; safe to run again (changes nothing twice)
#   deploy/install.sh grant USER ROLE...   let USER reach the socket with ROLEs (panel, tech, audit)
#
# Steps (each one checks first and only does what is missing):
#   1. groups: the client group lockerd-api (owns /run/lockerd and the socket), the role groups
#      lockerd-panel, lockerd-tech, lockerd-audit, and gpio (for /dev/gpiochip*)
#   2. the service user lockerd (system user, primary group lockerd-api, no login, no home)
#   3. directories: /etc/lockerd (0755), /etc/lockerd/credentials (root 0700), /opt/lockerd
#   4. the operation-log key /etc/lockerd/credentials/oplog.key (32 random bytes as hex, 0600),
#      created only when missing; the carriers' HMAC keys and MQTT TLS files placed next to it
#      become LoadCredential= lines in the drop-in lockerd.service.d/credentials.conf
#   5. udev rules: the RS-485 adapters (dialout, 0660) and gpiochip (gpio, 0660)
#   6. the venv /opt/lockerd/venv with the locked, hash-checked set and lockerd itself
#   7. /etc/lockerd/lockerd.toml from `lockerd config example` when missing (then edit it),
#      bash and zsh completion and the man page lockerctl(1), generated from the parser
#   8. the unit /etc/systemd/system/lockerd.service, daemon-reload, and
#      systemd-time-wait-sync.service enabled (the unit starts after the clock is synchronised)
# Enabling and starting is left to the operator after editing the config (README step 9).
#
# Environment (the defaults are the installation; tests point them elsewhere):
#   ROOT=            prefix for every file written (empty: /)
#   SERVICE_USER=lockerd  API_GROUP=lockerd-api  PANEL_GROUP=lockerd-panel
#   TECH_GROUP=lockerd-tech  AUDIT_GROUP=lockerd-audit  GPIO_GROUP=gpio
#   VENV=/opt/lockerd/venv  PYTHON=python3  SOURCE=<this checkout>  SKIP_VENV=  (1: keep venv)
#   LOCKERCTL=$VENV/bin/lockerctl (generates the completion scripts and the man page)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ROOT=${ROOT:-}
SERVICE_USER=${SERVICE_USER:-lockerd}
API_GROUP=${API_GROUP:-lockerd-api}
PANEL_GROUP=${PANEL_GROUP:-lockerd-panel}
TECH_GROUP=${TECH_GROUP:-lockerd-tech}
AUDIT_GROUP=${AUDIT_GROUP:-lockerd-audit}
GPIO_GROUP=${GPIO_GROUP:-gpio}
VENV=${VENV:-/opt/lockerd/venv}
PYTHON=${PYTHON:-python3}
SOURCE=${SOURCE:-$(dirname "$here")}
SKIP_VENV=${SKIP_VENV:-}
LOCKERCTL=${LOCKERCTL:-$ROOT$VENV/bin/lockerctl}

say() { echo "install: $*" >&2; }
changed() { echo "install: changed: $*" >&2; }

if [ "$(id -u)" != 0 ]; then say "run as root"; exit 1; fi

ensure_group() {
  getent group "$1" >/dev/null && return 0
  groupadd --system "$1"
  changed "group $1 created"
}

# write_file DEST MODE: stdin to DEST with MODE (root-owned), only when content or mode differ
write_file() {
  local dest=$1 mode=$2 tmp
  tmp=$(mktemp)
  cat >"$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest" && [ "$(stat -c %a "$dest")" = "${mode#0}" ]; then
    rm -f "$tmp"
    return 0
  fi
  install -D -m "$mode" -o root -g root "$tmp" "$dest"
  rm -f "$tmp"
  changed "$dest written"
}

ensure_dir() {  # ensure_dir PATH MODE OWNER GROUP
  local path=$1 mode=$2
  if [ -d "$path" ] && [ "$(stat -c '%a %U %G' "$path")" = "${mode#0} $3 $4" ]; then
    return 0
  fi
  install -d -m "$mode" -o "$3" -g "$4" "$path"
  changed "$path ready ($mode $3:$4)"
}

if [ "${1:-}" = grant ]; then
  [ $# -ge 3 ] || { say "usage: $0 grant USER ROLE... (panel, tech, audit)"; exit 1; }
  user=$2; shift 2
  groups=$API_GROUP
  for role in "$@"; do
    case $role in
      panel) groups="$groups,$PANEL_GROUP" ;;
      tech) groups="$groups,$TECH_GROUP" ;;
      audit) groups="$groups,$AUDIT_GROUP" ;;
      *) say "unknown role $role (panel, tech, audit)"; exit 1 ;;
    esac
  done
  usermod -a -G "$groups" "$user"
  changed "$user is in $groups (effective at the next connection)"
  exit 0
fi

# 1. groups
for g in "$API_GROUP" "$PANEL_GROUP" "$TECH_GROUP" "$AUDIT_GROUP" "$GPIO_GROUP"; do
  ensure_group "$g"
done

# 2. the service user
if ! id -u "$SERVICE_USER" >/dev/null 2>&1; then
  useradd --system --gid "$API_GROUP" --no-create-home --home-dir /var/lib/lockerd \
    --shell /usr/sbin/nologin "$SERVICE_USER"
  changed "user $SERVICE_USER created"
fi

# 3. directories
ensure_dir "$ROOT/etc/lockerd" 0755 root root
ensure_dir "$ROOT/etc/lockerd/credentials" 0700 root root
ensure_dir "$ROOT/opt/lockerd" 0755 root root

# 4. the log key and the other credentials
creds=$ROOT/etc/lockerd/credentials
if [ ! -s "$creds/oplog.key" ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$creds/oplog.key"; echo >>"$creds/oplog.key")
  changed "$creds/oplog.key generated"
fi
chmod 0600 "$creds/oplog.key"
{
  echo "# Written by deploy/install.sh from the files in /etc/lockerd/credentials: each one is"
  echo "# /run/credentials/lockerd.service/NAME for the daemon (carriers' HMAC keys, MQTT TLS)."
  echo "[Service]"
  for f in "$creds"/*; do
    name=$(basename "$f")
    [ -f "$f" ] && [ "$name" != oplog.key ] || continue
    case $name in *[!A-Za-z0-9._-]*) say "skipping credential $name (name)"; continue ;; esac
    echo "LoadCredential=$name:/etc/lockerd/credentials/$name"
  done
} | write_file "$ROOT/etc/systemd/system/lockerd.service.d/credentials.conf" 0644

# 5. udev rules
write_file "$ROOT/etc/udev/rules.d/99-lockerd-serial.rules" 0644 <"$here/udev/99-lockerd-serial.rules"
write_file "$ROOT/etc/udev/rules.d/99-lockerd-gpio.rules" 0644 <"$here/udev/99-lockerd-gpio.rules"
if [ -z "$ROOT" ] && command -v udevadm >/dev/null && [ -d /run/udev ]; then
  udevadm control --reload && udevadm trigger --subsystem-match=tty --subsystem-match=gpio || true
fi

# 6. the venv
if [ -z "$SKIP_VENV" ]; then
  lock=$SOURCE/requirements-pi.lock
  [ -f "$lock" ] || lock=$SOURCE/requirements.lock
  [ -x "$ROOT$VENV/bin/python" ] || { "$PYTHON" -m venv "$ROOT$VENV"; changed "venv $VENV created"; }
  "$ROOT$VENV/bin/pip" install --quiet --require-hashes --only-binary=:all: -r "$lock"
  "$ROOT$VENV/bin/pip" install --quiet --no-deps --force-reinstall "$SOURCE"
  "$ROOT$VENV/bin/pip" check
fi

# 7. the config (never overwritten: the operator's edits stay)
if [ ! -f "$ROOT/etc/lockerd/lockerd.toml" ]; then
  if [ -z "$SKIP_VENV" ]; then
    "$ROOT$VENV/bin/lockerd" config example | write_file "$ROOT/etc/lockerd/lockerd.toml" 0644
  else
    write_file "$ROOT/etc/lockerd/lockerd.toml" 0644 <"$SOURCE/lockerd/config/example.toml"
  fi
  say "edit /etc/lockerd/lockerd.toml: backend = \"real\", ports, boards, carriers, mqtt"
fi

# 7b. shell completion (bash, zsh) and the man page, generated by the installed lockerctl
if [ -x "$LOCKERCTL" ]; then
  "$LOCKERCTL" completion bash | write_file "$ROOT/usr/share/bash-completion/completions/lockerctl" 0644
  "$LOCKERCTL" completion zsh | write_file "$ROOT/usr/share/zsh/vendor-completions/_lockerctl" 0644
  "$LOCKERCTL" man | write_file "$ROOT/usr/share/man/man1/lockerctl.1" 0644
fi

# 8. the unit
write_file "$ROOT/etc/systemd/system/lockerd.service" 0644 <"$here/systemd/lockerd.service"
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  # time-sync.target (the unit's After=) only waits for a synchronised clock with this service
  # enabled: a board without a real-time clock then starts lockerd with the right time
  if systemctl cat systemd-time-wait-sync.service >/dev/null 2>&1 \
      && ! systemctl is-enabled --quiet systemd-time-wait-sync.service; then
    systemctl enable systemd-time-wait-sync.service
    changed "systemd-time-wait-sync.service enabled"
  fi
fi
say "done; next: lockerctl config check, lockerd doctor, systemctl enable --now lockerd"
