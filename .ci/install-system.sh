#!/usr/bin/env bash
# Installs what fmgpu needs from Debian on a bookworm machine (run as root):
# the Vulkan loader, Mesa's CPU Vulkan driver (lavapipe) from bookworm-backports
# (bookworm's own Mesa 22 is too old for Dawn), and the Fashion-MNIST dataset.
# The backports source reuses the mirror URI of the machine's own bookworm entry.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

backports=/etc/apt/sources.list.d/fmgpu-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  uri=""
  # deb822 entries: the URIs line of the stanza whose Suites include bookworm.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk 'BEGIN{RS="";FS="\n"} /Suites:[^\n]*bookworm([ \n]|$)/ { for(i=1;i<=NF;i++) if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/,"",$i); split($i,a," "); print a[1]; exit } }' "$f")
    [ -n "$uri" ] && break
  done
  # one-line entries: "deb URI bookworm main"
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1=="deb" { u=""; for(i=2;i<=NF;i++){ if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; continue } if (u=="") { u=$i; continue } if ($i=="bookworm") { print u; exit } break } }')
  fi
  [ -n "$uri" ] || { echo "install-system: no bookworm apt source found to derive the backports mirror from" >&2; exit 1; }
  keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  {
    echo "Types: deb"
    echo "URIs: $uri"
    echo "Suites: bookworm-backports"
    echo "Components: main"
    [ -f "$keyring" ] && echo "Signed-By: $keyring"
  } > "$backports"
  echo "install-system: added bookworm-backports from $uri"
fi

apt-get update -qq
apt-get install -y -qq libvulkan1 dataset-fashion-mnist >/dev/null
apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
if [ "${FMGPU_BROWSER:-1}" = 1 ]; then
  apt-get install -y -qq chromium >/dev/null
fi
echo "install-system: mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), dataset in /usr/share/datasets/fashion-mnist"
