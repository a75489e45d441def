# Sourced by scripts/test and scripts/serve: make .venv exist and match pyproject.toml.
# Installs are keyed on a hash of pyproject.toml, so a changed dependency list reinstalls
# and an unchanged one costs nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${STELLATE_VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "scripts: creating $VENV" >&2
  "$PYTHON_BIN" -m venv "$VENV"
fi

stamp_of() { { cat "$ROOT/pyproject.toml"; echo "$1"; } | sha256sum | cut -d' ' -f1; }

ensure_installed() {  # $1: the extras to install, e.g. "test" or "server"
  local want stamp_file="$VENV/.stellate-$1.stamp"
  want="$(stamp_of "$1")"
  if [ ! -f "$stamp_file" ] || [ "$(cat "$stamp_file")" != "$want" ]; then
    echo "scripts: installing stellate[$1] into $VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$1]"
    echo "$want" > "$stamp_file"
  fi
}
