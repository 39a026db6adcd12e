#!/usr/bin/env bash
# Removes what scripts/install.sh installed: stops and disables the unit, removes it and its
# drop-ins, /opt/edge-inferd and /usr/local/bin/edge-inferd. Keeps /etc/edge-inferd (the config),
# /var/lib/edge-inferd (the journal), /var/cache/edge-inferd and the edge-inferd user unless --purge.
# Idempotent: whatever is already gone is skipped.
set -euo pipefail

SCRIPT=uninstall.sh
# shellcheck source=scripts/install-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/install-common.sh"

PURGE=0

usage() {
  cat <<EOF
usage: scripts/uninstall.sh [--dry-run] [--purge] [--root DIR]

  --dry-run   print every step instead of doing it (no root needed)
  --purge     also remove the config, state and cache folders and the edge-inferd user
  --root DIR  remove from a staging root made by install.sh --root DIR (systemctl and account
              steps are printed, not done)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --purge) PURGE=1 ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=${2%/}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
  shift
done

# Removes a path if it is there.
remove() {
  if [ -e "$1" ] || [ -L "$1" ]; then run rm -rf "$1"; else echo "# already absent: $1"; fi
}

require_root

echo "# edge-inferd: uninstalling from ${ROOT:-/}$([ "$DRY" = 1 ] && echo ' (dry run: nothing is changed)')"
UNIT_DIR="${ROOT}/etc/systemd/system"
if [ -n "$ROOT" ] || [ -d /run/systemd/system ] || [ "$DRY" = 1 ]; then
  if [ -n "$ROOT" ] || [ "$DRY" = 1 ] || systemctl cat "$UNIT" >/dev/null 2>&1; then
    system systemctl disable --now "$UNIT"
  else
    echo "# $UNIT is not known to systemd"
  fi
fi
remove "$UNIT_DIR/$UNIT"
remove "$UNIT_DIR/$UNIT.d"
if [ -n "$ROOT" ] || [ -d /run/systemd/system ] || [ "$DRY" = 1 ]; then system systemctl daemon-reload; fi
if [ "$(readlink "${ROOT}/usr/local/bin/edge-inferd" 2>/dev/null || true)" = "$PREFIX/bin/edge-inferd" ]; then
  run rm -f "${ROOT}/usr/local/bin/edge-inferd"
else
  echo "# already absent: ${ROOT}/usr/local/bin/edge-inferd"
fi
remove "${ROOT}$PREFIX"

if [ "$PURGE" = 1 ]; then
  remove "${ROOT}/etc/edge-inferd"
  remove "${ROOT}/var/lib/edge-inferd"
  remove "${ROOT}/var/cache/edge-inferd"
  if id -u "$SERVICE_USER" >/dev/null 2>&1; then system userdel "$SERVICE_USER"; else echo "# user $SERVICE_USER already absent"; fi
  if getent group "$SERVICE_USER" >/dev/null; then system groupdel "$SERVICE_USER"; fi
else
  echo "# kept ${ROOT}/etc/edge-inferd, ${ROOT}/var/lib/edge-inferd and the $SERVICE_USER user (--purge removes them)"
fi
echo "# done"
