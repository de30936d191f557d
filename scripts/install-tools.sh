#!/usr/bin/env bash
# Installs Debian's prometheus, promtool, alertmanager and amtool when they are missing.
set -euo pipefail
missing=()
for bin in prometheus promtool prometheus-alertmanager amtool; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "install-tools: missing ${missing[*]}; install the Debian packages prometheus and prometheus-alertmanager" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-tools: installing prometheus and prometheus-alertmanager (missing: ${missing[*]})"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
