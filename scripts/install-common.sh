# Shared by scripts/install.sh and scripts/uninstall.sh (sourced, not run). The caller sets DRY
# (1 = print steps only), ROOT (a staging root, or empty) and SCRIPT (its name, for messages).

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
