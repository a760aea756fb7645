#!/usr/bin/env bash
# Builds a Debian package of affinityd from a built checkout (npm ci && npm
# run build) with dpkg-deb; no debhelper needed.
#
#   usage: contrib/make-deb.sh [--out DIR] [--revision N]   (prints the path of the .deb)
#
# Layout (Debian's places):
#   /usr/lib/affinityd/             the program: dist, the addon, production node_modules, proto
#   /usr/bin/affinityd              the command
#   /lib/systemd/system/            affinityd.service, affinityd-capture@.service
#   /usr/lib/sysusers.d/, /usr/lib/tmpfiles.d/   the user and groups, owners and modes
#   /etc/affinityd/affinityd.yaml   a conffile: sockets, metrics and snapshot on; node.id to be set
#   /etc/affinityd/cluster.key      made by postinst on first install (mode 0600), removed on purge
#   /usr/share/doc/affinityd/       README, docs/*.md, CHANGELOG, copyright, the example configuration
#   /usr/share/man/man8/affinityd.8.gz, /usr/share/bash-completion/completions/affinityd
#   /usr/share/affinityd/           prometheus/ (alerting rules), wireshark/ (the dissector)
# The service is not started on first install (node.id must be set first);
# an upgrade restarts it if it was running.
set -euo pipefail

out="$PWD"
revision=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --revision) revision="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-deb.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "make-deb.sh: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb is needed (apt-get install dpkg-dev)"
[ -f "$src/dist/src/cli/main.js" ] || die "no dist/: run npm ci && npm run build in $src first"
[ -f "$src/build/Release/affinityd.node" ] || die "no addon: run npm ci (or npm run build:native) in $src first"
version="$(node -e 'process.stdout.write(require(process.argv[1]).version)' "$src/package.json")"
arch="$(dpkg --print-architecture)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
pkg="$work/affinityd"
lib="$pkg/usr/lib/affinityd"

mkdir -p "$lib/build/Release" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/usr/lib/sysusers.d" "$pkg/usr/lib/tmpfiles.d" \
  "$pkg/etc/affinityd" "$pkg/usr/share/doc/affinityd/examples" "$pkg/usr/share/man/man8" "$pkg/usr/share/bash-completion/completions" \
  "$pkg/usr/share/affinityd/prometheus" "$pkg/usr/share/affinityd/wireshark" "$pkg/DEBIAN"
mkdir -p "$lib/dist"
cp -a "$src/package.json" "$src/package-lock.json" "$src/proto" "$lib/"
cp -a "$src/dist/src" "$src/dist/build-info.json" "$lib/dist/"   # not the compiled tests and benchmarks
cp -a "$src/build/Release/affinityd.node" "$lib/build/Release/"
# the program finds its package root by package.json and proto/; docs for `affinityd help` live in /usr/share/doc
(cd "$lib" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null && { npm rebuild pcap >/dev/null 2>&1 || echo "make-deb.sh: pcap did not build (libpcap-dev missing?): capture will be unavailable in the package" >&2; })
rm -f "$lib/package-lock.json"
find "$lib" -name '*.map' -delete

cat > "$pkg/usr/bin/affinityd" <<'WRAP'
#!/bin/sh
exec /usr/bin/node /usr/lib/affinityd/dist/src/cli/main.js "$@"
WRAP
chmod 0755 "$pkg/usr/bin/affinityd"

for u in affinityd.service affinityd-capture@.service; do
  sed -e 's|/opt/affinityd/dist|/usr/lib/affinityd/dist|g' -e 's|Documentation=file:/opt/affinityd/docs/|Documentation=man:affinityd(8) file:/usr/share/doc/affinityd/|' \
    "$src/contrib/systemd/$u" > "$pkg/lib/systemd/system/$u"
done
install -m 0644 "$src/contrib/sysusers.d/affinityd.conf" "$pkg/usr/lib/sysusers.d/affinityd.conf"
install -m 0644 "$src/contrib/tmpfiles.d/affinityd.conf" "$pkg/usr/lib/tmpfiles.d/affinityd.conf"
sh "$src/contrib/appliance-config.sh" "$src/config/affinityd.example.yaml" > "$pkg/etc/affinityd/affinityd.yaml"
chmod 0640 "$pkg/etc/affinityd/affinityd.yaml"

doc="$pkg/usr/share/doc/affinityd"
cp "$src/README.md" "$src"/docs/*.md "$doc/"
cp "$src/config/affinityd.example.yaml" "$doc/examples/"
gzip -9n -c "$src/CHANGELOG.md" > "$doc/changelog.gz"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: affinityd"
  echo
  echo "Files: *"
  echo "License: MIT"
  echo
  echo "License: MIT"
  sed -e 's/^$/./' -e 's/^/ /' "$src/LICENSE"
} > "$doc/copyright"
gzip -9n -c "$src/contrib/man/affinityd.8" > "$pkg/usr/share/man/man8/affinityd.8.gz"
install -m 0644 "$src/contrib/bash-completion/affinityd" "$pkg/usr/share/bash-completion/completions/affinityd"
install -m 0644 "$src/contrib/prometheus/affinityd.rules.yml" "$src/contrib/prometheus/affinityd.rules.test.yml" "$pkg/usr/share/affinityd/prometheus/"
install -m 0644 "$src/contrib/affinityd.lua" "$pkg/usr/share/affinityd/wireshark/"

installed_size="$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)"
cat > "$pkg/DEBIAN/control" <<CONTROL
Package: affinityd
Version: $version-$revision
Architecture: $arch
Maintainer: affinityd maintainers <affinityd@localhost>
Installed-Size: $installed_size
Depends: nodejs (>= 20), systemd, libc6, libstdc++6
Recommends: libpcap0.8
Suggests: prometheus, tshark
Section: net
Priority: optional
Description: endpoint affinity for PPP Multilink bundles across appliances
 A client (a PPP Multilink peer, identified by its RFC 1990 endpoint
 discriminator and its username) opens several connections that may arrive
 at different appliances; affinityd makes all of them reach the same
 endpoint, through an authenticated multicast cluster protocol.
CONTROL
echo /etc/affinityd/affinityd.yaml > "$pkg/DEBIAN/conffiles"

cat > "$pkg/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
# affinityd postinst: the user and groups, the cluster key on first install,
# owners and modes, and a restart on upgrade if it was running.
set -e
if [ "$1" = configure ]; then
  systemd-sysusers /usr/lib/sysusers.d/affinityd.conf
  if [ ! -e /etc/affinityd/cluster.key ]; then
    (umask 077; echo "1 $(od -An -tx1 -N32 /dev/urandom | tr -d ' \n') send" > /etc/affinityd/cluster.key)
    echo "affinityd: made a new /etc/affinityd/cluster.key: give every node of a cluster the same file"
  fi
  systemd-tmpfiles --create /usr/lib/tmpfiles.d/affinityd.conf
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
    if [ -n "$2" ]; then systemctl try-restart affinityd.service >/dev/null || true; fi
  fi
  if [ -z "$2" ]; then
    echo "affinityd: set node.id, cluster.interface and the endpoints in /etc/affinityd/affinityd.yaml,"
    echo "           check it with: affinityd check-config /etc/affinityd/affinityd.yaml"
    echo "           then: systemctl enable --now affinityd"
  fi
fi
exit 0
POSTINST
cat > "$pkg/DEBIAN/prerm" <<'PRERM'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop 'affinityd.service' 'affinityd-capture@*.service' >/dev/null 2>&1 || true
fi
exit 0
PRERM
cat > "$pkg/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
# On purge: the generated key and the state (snapshot, captures). The user
# and groups stay, as Debian leaves system users (files may still be theirs).
set -e
if [ "$1" = purge ]; then
  rm -f /etc/affinityd/cluster.key
  rmdir /etc/affinityd 2>/dev/null || true
  rm -rf /var/lib/affinityd
fi
if [ -d /run/systemd/system ]; then systemctl --system daemon-reload >/dev/null || true; fi
exit 0
POSTRM
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"

mkdir -p "$out"
deb="$out/affinityd_${version}-${revision}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
