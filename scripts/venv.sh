#!/usr/bin/env bash
# Sourced by env.sh and bench_env.sh. ensure_venv DIR REQUIREMENTS [PROJECT]: create the virtual environment DIR
# once (python3.11 where there is one) and install REQUIREMENTS into it, plus PROJECT editable without its
# dependencies when given, whenever those files change (a stamp file in DIR records what was installed).
ensure_venv() {
  local venv="$1" req="$2" project="${3:-}"
  if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating $venv"
    python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  fi
  local stamp
  stamp="$venv/.installed-$(cat "$req" ${project:+"$project/pyproject.toml"} | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "[setup] installing $req into $venv (a few minutes the first time)"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
    if [ -n "$project" ]; then
      "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$project"
    fi
    touch "$stamp"
  fi
}
