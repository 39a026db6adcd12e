# Shared by scripts/install.sh and scripts/uninstall.sh (sourced, not run). The caller sets SCRIPT
# (its name, for messages); its options change DRY (1 = print steps only) and ROOT (a staging root).

# Where the program, the unit and the service account live; the defaults both scripts start from.
PREFIX=/opt/edge-inferd
UNIT=edge-inferd.service
SERVICE_USER=edge-inferd
DRY=0
ROOT=

die() {
  echo "$SCRIPT: error: $*" >&2
  exit 1
}

# Prints a command in shell syntax.
show() {
  printf '+'
  printf ' %q' "$@"
  printf '\n'
}

# Runs a step, or prints it under --dry-run.
run() {
  show "$@"
  [ "$DRY" = 1 ] || "$@"
}

# Steps that change the running system (accounts, systemd): only printed under --root.
system() {
  if [ -n "$ROOT" ]; then
    printf '+ (skipped under --root)'
    printf ' %q' "$@"
    printf '\n'
  else
    run "$@"
  fi
}

# Changing the system needs root; --dry-run and a staging --root do not.
require_root() {
  if [ "$DRY" = 0 ] && [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
    die "must be run as root (sudo scripts/$SCRIPT); scripts/$SCRIPT --dry-run shows the steps without root"
  fi
}
