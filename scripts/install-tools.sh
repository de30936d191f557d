#!/usr/bin/env bash
# Installs Debian's prometheus, promtool, alertmanager and amtool when they are missing, and
# victoria-metrics (the remote_write store of tests/scale; Debian's binary is /usr/bin/victoria-metrics).
set -euo pipefail
missing=()
for bin in prometheus promtool prometheus-alertmanager amtool victoria-metrics; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
[ ${#missing[@]} -eq 0 ] && exit 0
packages=()
for bin in "${missing[@]}"; do
  case "$bin" in
    prometheus|promtool) pkg=prometheus ;;
    prometheus-alertmanager|amtool) pkg=prometheus-alertmanager ;;
    victoria-metrics) pkg=victoria-metrics ;;
  esac
  [[ " ${packages[*]} " == *" $pkg "* ]] || packages+=("$pkg")
done
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "install-tools: missing ${missing[*]}; install the Debian packages ${packages[*]}" >&2
  exit 0
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "install-tools: installing ${packages[*]} (missing: ${missing[*]})"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
