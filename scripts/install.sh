#!/usr/bin/env bash
# Installs edge-inferd from a built checkout (npm ci has run: dist/, node_modules/, native addons)
# as a systemd service:
#   /opt/edge-inferd/                 the program (dist, node_modules, models, native addons)
#   /opt/edge-inferd/bin/edge-inferd  launcher (exec's node on dist/src/cli.js; keeps the PID)
#   /usr/local/bin/edge-inferd        -> the launcher, for `edge-inferd probe` and check-config
#   /etc/edge-inferd/config.yaml      from systemd/config.example.yaml, only if absent
#   /etc/systemd/system/edge-inferd.service, enabled (and started with --now)
#   user and group edge-inferd (system account, no login), in groups video and render
# Idempotent: running it again updates the program and the unit, keeps the config.
set -euo pipefail

SCRIPT=install.sh
# shellcheck source=scripts/install-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/install-common.sh"

NOW=0
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<EOF
usage: scripts/install.sh [--dry-run] [--now] [--root DIR] [--source DIR]

  --dry-run     print every step instead of doing it (no root needed)
  --now         also (re)start the service
  --root DIR    install the files under DIR (a staging root); user, group and systemctl steps
                are printed, not done
  --source DIR  the built edge-inferd tree to install (default: this checkout)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --now) NOW=1 ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=${2%/}; shift ;;
    --source) [ $# -ge 2 ] || die "--source needs a directory"; SOURCE=$(cd "$2" && pwd); shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
  shift
done

require_root

for need in dist/src/cli.js node_modules package.json systemd/$UNIT systemd/config.example.yaml models; do
  [ -e "$SOURCE/$need" ] || die "$SOURCE/$need is missing: run npm ci (it builds dist/ and the native addons) in $SOURCE first"
done
NODE=$(command -v node || true)
[ -n "$NODE" ] || die "node is not on PATH; install Node.js 20 or newer"
NODE=$(readlink -f "$NODE")
NODE_MAJOR=$("$NODE" -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "$NODE is Node.js $NODE_MAJOR; edge-inferd needs 20 or newer"
ls "$SOURCE"/native/build/Release/edge_notify.node >/dev/null 2>&1 ||
  echo "install.sh: warning: $SOURCE/native/build/Release/edge_notify.node is not built: no READY/WATCHDOG for systemd (node scripts/build-native.mjs)" >&2

echo "# edge-inferd: installing $SOURCE to ${ROOT}$PREFIX$([ "$DRY" = 1 ] && echo ' (dry run: nothing is changed)')"

echo "# 1. system user and groups"
for g in video render; do
  getent group "$g" >/dev/null || system groupadd --system "$g"
done
getent group "$SERVICE_USER" >/dev/null || system groupadd --system "$SERVICE_USER"
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
  echo "# user $SERVICE_USER exists"
else
  system useradd --system --gid "$SERVICE_USER" --groups video,render --home-dir /var/lib/edge-inferd --no-create-home \
    --shell /usr/sbin/nologin --comment "edge-inferd daemon" "$SERVICE_USER"
fi

echo "# 2. program files in $PREFIX (each part swapped in whole)"
DEST="${ROOT}$PREFIX"
run install -d -m 0755 "$DEST" "$DEST/bin" "$DEST/native/build/Release"
for part in dist node_modules models schemas systemd scripts docs package.json README.md; do
  [ -e "$SOURCE/$part" ] || continue
  run rm -rf "$DEST/$part.new"
  run cp -a "$SOURCE/$part" "$DEST/$part.new"
  run rm -rf "$DEST/$part"
  run mv "$DEST/$part.new" "$DEST/$part"
done
for addon in "$SOURCE"/native/build/Release/*.node; do
  if [ -e "$addon" ]; then run install -m 0755 "$addon" "$DEST/native/build/Release/"; fi
done

echo "# 3. launcher $PREFIX/bin/edge-inferd (node: $NODE)"
LAUNCHER=$(cat <<EOF
#!/bin/sh
# Written by scripts/install.sh. exec keeps the PID, so systemd's NotifyAccess=main accepts sd_notify.
# ONNX Runtime's telemetry off unless the caller set ORT_DISABLE_TELEMETRY (=0 opts in).
: "\${ORT_DISABLE_TELEMETRY:=1}"
export ORT_DISABLE_TELEMETRY
here=\$(dirname "\$(readlink -f "\$0")")
exec $NODE "\$here/../dist/src/cli.js" "\$@"
EOF
)
if [ "$DRY" = 1 ]; then
  show write "$DEST/bin/edge-inferd"
else
  show write "$DEST/bin/edge-inferd"
  printf '%s\n' "$LAUNCHER" >"$DEST/bin/edge-inferd.new"
  chmod 0755 "$DEST/bin/edge-inferd.new"
  mv "$DEST/bin/edge-inferd.new" "$DEST/bin/edge-inferd"
fi
run install -d -m 0755 "${ROOT}/usr/local/bin"
run ln -sfn "$PREFIX/bin/edge-inferd" "${ROOT}/usr/local/bin/edge-inferd"

echo "# 4. configuration in /etc/edge-inferd"
CONF_DIR="${ROOT}/etc/edge-inferd"
# Under --root the account may not exist: ownership is left to the real install.
OWN=()
[ -n "$ROOT" ] || OWN=(-o root -g "$SERVICE_USER")
run install -d -m 0750 "${OWN[@]}" "$CONF_DIR"
if [ -e "$CONF_DIR/config.yaml" ]; then
  echo "# kept the existing $CONF_DIR/config.yaml (the example is $PREFIX/systemd/config.example.yaml)"
else
  run install -m 0640 "${OWN[@]}" "$SOURCE/systemd/config.example.yaml" "$CONF_DIR/config.yaml"
fi

echo "# 5. systemd unit"
UNIT_DIR="${ROOT}/etc/systemd/system"
run install -d -m 0755 "$UNIT_DIR"
run install -m 0644 "$SOURCE/systemd/$UNIT" "$UNIT_DIR/$UNIT"
if [ -e "${ROOT}/etc/nv_tegra_release" ]; then
  # Jetson: the GPU is reached through /dev/nvmap and /dev/nvhost-* besides the char-nvhost* groups.
  run install -d -m 0755 "$UNIT_DIR/$UNIT.d"
  show write "$UNIT_DIR/$UNIT.d/10-tegra.conf"
  if [ "$DRY" = 0 ]; then
    {
      echo "# Written by scripts/install.sh on a Jetson."
      echo "[Service]"
      for dev in /dev/nvmap /dev/nvhost-* /dev/nvgpu/igpu0/*; do
        if [ -e "$dev" ]; then echo "DeviceAllow=$dev rw"; fi
      done
    } >"$UNIT_DIR/$UNIT.d/10-tegra.conf"
  fi
fi
if [ -z "$ROOT" ] && [ "$DRY" = 0 ] && [ ! -d /run/systemd/system ]; then
  echo "# systemd is not running on this machine: run systemctl enable $UNIT once it boots with systemd"
else
  system systemctl daemon-reload
  system systemctl enable "$UNIT"
  if [ "$NOW" = 1 ]; then system systemctl restart "$UNIT"; fi
fi

echo "# done. Next: edit /etc/edge-inferd/config.yaml, edge-inferd check-config /etc/edge-inferd/config.yaml,"
echo "#       edge-inferd probe, then systemctl start edge-inferd (status page: ssh -L 8321:127.0.0.1:8321 <device>)"
