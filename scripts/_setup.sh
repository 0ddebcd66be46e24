# Shared by scripts/run and scripts/test: a virtual environment with the pinned packages.
# Sourced, not run. Sets VENV and PY.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="${XNATLITE_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  echo "xnatlite: creating the virtual environment in $VENV"
  python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
fi
want=$(sha256sum "$ROOT/requirements.txt" | cut -d' ' -f1)
have=$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "xnatlite: installing Python packages from requirements.txt"
  "$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt"
  echo "$want" > "$VENV/.requirements.sha256"
fi

apt_install() {
  # apt_install PACKAGE... : install Debian packages that are missing (needs root or sudo).
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "xnatlite: installing Debian packages: $*"
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
