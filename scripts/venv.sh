# Sourced by scripts/demo and scripts/test: create .venv and install the project (again only
# when pyproject.toml or requirements.lock changed). $1: the extras to install, e.g. "[dev]" or "".
# The runtime dependencies come first from requirements.lock, hash-checked and as wheels only:
# the set the cabinets run. lockerd and its extras' tools (pytest, mypy ...) follow, resolved
# with the lock's pins as constraints, so they can never move a runtime dependency.
ensure_venv() {
  local extras=${1:-}
  local py=${PYTHON:-python3}
  if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
  fi
  local stamp=".venv/.lockerd-installed${extras//[^a-z]/-}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
    echo "installing lockerd${extras} into .venv (log: .venv/install.log)"
    local pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
    # pip takes no hashes in a constraints file: the pins alone hold the locked set fixed.
    sed -n 's/^\([A-Za-z0-9._-]*==[^ ;\\]*\).*/\1/p' requirements.lock >.venv/lock-pins.txt
    if ! { "${pip[@]}" --upgrade pip &&
           "${pip[@]}" --require-hashes --only-binary=:all: -r requirements.lock &&
           "${pip[@]}" -c .venv/lock-pins.txt -e ".${extras}"; } >.venv/install.log 2>&1; then
      cat .venv/install.log >&2
      echo "installing lockerd failed" >&2
      return 1
    fi
    touch "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH:/usr/sbin"
}
