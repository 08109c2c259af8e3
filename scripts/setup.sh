#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine: Prometheus, Alertmanager, PostgreSQL (the tests start
# their own servers), Chromium and its driver (the console's browser tests), docker-compose (static checks
# only), a virtualenv in .venv with the project and its test extras, and Debian trixie's Prometheus and
# Alertmanager beside bookworm's. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the console's browser tests (Selenium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends "${need[@]}" \
    || { $sudo apt-get update && $sudo apt-get install -y --no-install-recommends "${need[@]}"; }
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# The versions most users run now (Debian trixie: Alertmanager 0.28, Prometheus 2.53), next to bookworm's
# 0.25/2.42 and without replacing them: apt with its own sources list, lists and cache under .cache/trixie
# (the machine's own apt state is not touched), `apt-get download`, then `dpkg-deb -x` into
# .cache/trixie/root. Tests select them with --real-parts / RECEIVER_TEST_PARTS (see tests/conftest.py).
trixie=.cache/trixie
if [ ! -x "$trixie/root/usr/bin/prometheus" ] || [ ! -x "$trixie/root/usr/bin/prometheus-alertmanager" ]; then
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  mkdir -p "$trixie/lists/partial" "$trixie/parts" "$trixie/cache/archives/partial" "$trixie/debs" "$trixie/root"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" \
    >"$trixie/sources.list"
  : >"$trixie/status"
  apt_trixie=(-o "Dir::Etc::sourcelist=$PWD/$trixie/sources.list" -o "Dir::Etc::sourceparts=$PWD/$trixie/parts"
    -o "Dir::State::Lists=$PWD/$trixie/lists" -o "Dir::State::status=$PWD/$trixie/status"
    -o "Dir::Cache=$PWD/$trixie/cache" -o "Dir::Etc::preferencesparts=$PWD/$trixie/parts" -o "APT::Get::List-Cleanup=0"
    -o "APT::Sandbox::User=root")
  apt-get "${apt_trixie[@]}" -qq update
  (cd "$trixie/debs" && apt-get "${apt_trixie[@]}" -qq download prometheus prometheus-alertmanager)
  for deb in "$trixie"/debs/*.deb; do dpkg-deb -x "$deb" "$trixie/root"; done
fi
