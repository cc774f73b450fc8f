# Sourced by scripts/demo and scripts/test: create .venv and install the project (again only
# when pyproject.toml changed). $1: the extras to install, e.g. "[dev]" or "".
ensure_venv() {
  local extras=${1:-}
  local py=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
  fi
  local stamp=".venv/.lockerd-installed${extras//[^a-z]/-}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "installing lockerd${extras} into .venv (log: .venv/install.log)"
    if ! { .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip &&
           .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"; } \
         >.venv/install.log 2>&1; then
      cat .venv/install.log >&2
      echo "installing lockerd failed" >&2
      return 1
    fi
    touch "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH:/usr/sbin"
}
