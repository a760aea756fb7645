#!/usr/bin/env bash
# Installs affinityd on an appliance from a built checkout (npm ci && npm run build):
#
#   /opt/affinityd/                  the program (dist, addon, production node_modules, docs)
#   /usr/local/bin/affinityd         the command
#   /etc/affinityd/affinityd.yaml    configuration (kept if present), root:affinityd 0640
#   /etc/affinityd/cluster.key       a new random cluster key (kept if present), affinityd 0600
#   /etc/systemd/system/affinityd.service, affinityd-capture@.service
#   users: affinityd (system, no login), group affinityd-view (read-only control socket)
#
# usage: contrib/install.sh [--root DIR] [--prefix /opt/affinityd] [--no-users] [--no-systemctl]
#   --root DIR      install under DIR (a staging tree or image root); implies --no-systemctl
#   --no-users      do not create the user and group (ownership is left to the caller)
# Then: edit /etc/affinityd/affinityd.yaml (node.id, cluster.interface, endpoints),
# copy the same cluster.key to every node, and: systemctl enable --now affinityd
set -euo pipefail

root=""
prefix=/opt/affinityd
users=1
systemctl_=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; systemctl_=0; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --no-users) users=0; shift ;;
    --no-systemctl) systemctl_=0; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "install.sh: $*" >&2; exit 1; }
[ -f "$src/dist/src/cli/main.js" ] || die "no dist/: run npm ci && npm run build in $src first"
[ -f "$src/build/Release/affinityd.node" ] || die "no addon: run npm ci (or npm run build:native) in $src first"
command -v node >/dev/null || die "node (>= 20) is not installed"
if [ "$users" = 1 ] && [ "$(id -u)" != 0 ]; then die "creating users needs root (or pass --no-users)"; fi

if [ "$users" = 1 ]; then
  getent group affinityd >/dev/null || groupadd --system affinityd
  getent group affinityd-view >/dev/null || groupadd --system affinityd-view
  getent passwd affinityd >/dev/null ||
    useradd --system --gid affinityd --groups affinityd-view --home-dir /var/lib/affinityd --no-create-home --shell /usr/sbin/nologin affinityd
fi

dest="$root$prefix"
echo "installing the program in $dest"
rm -rf "$dest.new"
mkdir -p "$dest.new/build/Release"
cp -a "$src/package.json" "$src/package-lock.json" "$src/dist" "$src/proto" "$src/docs" "$src/README.md" "$src/contrib" "$src/config" "$dest.new/"
cp -a "$src/build/Release/affinityd.node" "$dest.new/build/Release/"
# production dependencies only; the addon is the one built above, so no
# install scripts run except the optional pcap package's own build
(cd "$dest.new" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null && { npm rebuild pcap >/dev/null 2>&1 || echo "install.sh: pcap did not build (libpcap-dev missing?): capture will be unavailable" >&2; })
rm -rf "$dest.old"
[ -d "$dest" ] && mv "$dest" "$dest.old"
mv "$dest.new" "$dest"
rm -rf "$dest.old"

mkdir -p "$root/usr/local/bin"
cat > "$root/usr/local/bin/affinityd" <<WRAP
#!/bin/sh
exec node $prefix/dist/src/cli/main.js "\$@"
WRAP
chmod 0755 "$root/usr/local/bin/affinityd"

etc="$root/etc/affinityd"
mkdir -p "$etc"
if [ ! -f "$etc/affinityd.yaml" ]; then
  sed -e 's|^\(  snapshotFile:\) ""  |\1 /var/lib/affinityd/table.snap|' \
      -e 's|^\(  socket:\) ""                    |\1 /run/affinityd/control.sock|' \
      -e 's|^\(  readOnlySocket:\) ""            |\1 /run/affinityd/control-ro.sock|' \
      -e 's|^\(  readOnlyGroup:\) ""             |\1 affinityd-view|' \
      -e 's|^\(  enabled:\) false\( *\)$|\1 true\2|' \
      "$src/config/affinityd.example.yaml" > "$etc/affinityd.yaml"
  chmod 0640 "$etc/affinityd.yaml"
  echo "wrote $etc/affinityd.yaml: set node.id, cluster.interface and the endpoints"
else
  echo "kept $etc/affinityd.yaml"
fi
if [ ! -f "$etc/cluster.key" ]; then
  (umask 077; echo "1 $(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("hex"))') send" > "$etc/cluster.key")
  echo "wrote a new $etc/cluster.key: copy this same file to every node of the cluster"
else
  echo "kept $etc/cluster.key"
fi
chmod 0600 "$etc/cluster.key"
if [ "$users" = 1 ]; then
  chown root:affinityd "$etc/affinityd.yaml"
  chown affinityd:affinityd "$etc/cluster.key"
fi

unit="$root/etc/systemd/system"
mkdir -p "$unit"
sed "s|/opt/affinityd|$prefix|g" "$src/contrib/systemd/affinityd.service" > "$unit/affinityd.service"
sed "s|/opt/affinityd|$prefix|g" "$src/contrib/systemd/affinityd-capture@.service" > "$unit/affinityd-capture@.service"
chmod 0644 "$unit/affinityd.service" "$unit/affinityd-capture@.service"
if [ "$systemctl_" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  echo "installed. start it with: systemctl enable --now affinityd"
else
  echo "installed under ${root:-/} (systemctl not run)"
fi
