#!/usr/bin/env bash
# Installs affinityd on an appliance from a built checkout (npm ci && npm run build).
# (On Debian, contrib/make-deb.sh builds a .deb of the same layout under /usr.)
#
#   /opt/affinityd/                               the program (dist, addon, production node_modules, docs)
#   /usr/local/bin/affinityd                      the command
#   /etc/affinityd/affinityd.yaml                 configuration (kept if present), root:affinityd 0640
#   /etc/affinityd/cluster.key                    a new random cluster key (kept if present), affinityd 0600
#   /usr/local/lib/systemd/system/                affinityd.service, affinityd-capture@.service (replaced on
#                                                 every run: change them with drop-ins, systemctl edit affinityd)
#   /usr/local/lib/sysusers.d/affinityd.conf      user affinityd, group affinityd-view (read-only control socket)
#   /usr/local/lib/tmpfiles.d/affinityd.conf      owners and modes of the key, the configuration, /var/lib/affinityd
#   /usr/local/share/man/man8/affinityd.8, /usr/local/share/bash-completion/completions/affinityd
#
# usage: contrib/install.sh [--root DIR] [--prefix /opt/affinityd] [--node PATH] [--no-users] [--no-systemctl]
#   --root DIR      stage under DIR (an image root): creates no user and changes no owner on this
#                   host; the image's systemd-sysusers and systemd-tmpfiles do both at its first boot
#   --node PATH     the Node.js the units run (default: node on the PATH; /usr/bin/node with --root);
#                   it must be version 20 or later
#   --no-users      do not create the user and groups or set owners here (the caller does)
#   --no-systemctl  do not run systemctl daemon-reload
# Then: edit /etc/affinityd/affinityd.yaml (node.id, cluster.interface, endpoints),
# copy the same cluster.key to every node, and: systemctl enable --now affinityd
set -euo pipefail

root=""
prefix=/opt/affinityd
node=""
users=1
systemctl_=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; systemctl_=0; users=0; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --node) node="$2"; shift 2 ;;
    --no-users) users=0; shift ;;
    --no-systemctl) systemctl_=0; shift ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "install.sh: $*" >&2; exit 1; }
[ -f "$src/dist/src/cli/main.js" ] || die "no dist/: run npm ci && npm run build in $src first"
[ -f "$src/build/Release/affinityd.node" ] || die "no addon: run npm ci (or npm run build:native) in $src first"
command -v npm >/dev/null || die "npm is needed to install the production dependencies"

# The Node.js the units will run: it must exist and be 20 or later (Debian 12's own is 18).
if [ -z "$node" ]; then
  if [ -n "$root" ]; then node=/usr/bin/node; else node="$(command -v node || true)"; fi
fi
[ -n "$node" ] || die "Node.js is not installed: affinityd needs Node.js 20 or later (e.g. from NodeSource; Debian 12's nodejs is 18)"
case "$node" in /*) ;; *) die "--node: an absolute path, got $node" ;; esac
if [ -x "$root$node" ]; then
  version="$("$root$node" -e 'process.stdout.write(process.versions.node)' 2>/dev/null || true)"
  [ -n "$version" ] || die "$root$node does not run (cannot tell its version)"
  [ "${version%%.*}" -ge 20 ] 2>/dev/null || die "$root$node is Node.js $version: affinityd needs Node.js 20 or later (Debian 12's nodejs is 18; use NodeSource's)"
  echo "Node.js $version at $node"
elif [ -n "$root" ]; then
  echo "install.sh: warning: $root$node does not exist: install Node.js 20 or later in the image at $node" >&2
else
  die "$node is not executable"
fi
if [ "$users" = 1 ] && [ "$(id -u)" != 0 ]; then die "creating users and setting owners needs root (or pass --no-users)"; fi

dest="$root$prefix"
echo "installing the program in $dest"
rm -rf "$dest.new"
mkdir -p "$dest.new/build/Release"
cp -a "$src/package.json" "$src/package-lock.json" "$src/dist" "$src/proto" "$src/docs" "$src/README.md" "$src/contrib" "$src/config" "$dest.new/"
for f in LICENSE CHANGELOG.md; do [ -f "$src/$f" ] && cp -a "$src/$f" "$dest.new/"; done
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
exec $node $prefix/dist/src/cli/main.js "\$@"
WRAP
chmod 0755 "$root/usr/local/bin/affinityd"

# users and groups, and owners and modes, as the target's systemd would set them
lib="$root/usr/local/lib"
mkdir -p "$lib/sysusers.d" "$lib/tmpfiles.d"
install -m 0644 "$src/contrib/sysusers.d/affinityd.conf" "$lib/sysusers.d/affinityd.conf"
install -m 0644 "$src/contrib/tmpfiles.d/affinityd.conf" "$lib/tmpfiles.d/affinityd.conf"
if [ "$users" = 1 ]; then
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers "$lib/sysusers.d/affinityd.conf"
  else
    getent group affinityd >/dev/null || groupadd --system affinityd
    getent group affinityd-view >/dev/null || groupadd --system affinityd-view
    getent passwd affinityd >/dev/null ||
      useradd --system --gid affinityd --groups affinityd-view --home-dir /var/lib/affinityd --no-create-home --shell /usr/sbin/nologin affinityd
  fi
fi

etc="$root/etc/affinityd"
mkdir -p "$etc"
if [ ! -f "$etc/affinityd.yaml" ]; then
  sh "$src/contrib/appliance-config.sh" "$src/config/affinityd.example.yaml" > "$etc/affinityd.yaml"
  chmod 0640 "$etc/affinityd.yaml"
  echo "wrote $etc/affinityd.yaml: set node.id (the node refuses to start without it), cluster.interface and the endpoints"
else
  echo "kept $etc/affinityd.yaml"
fi
if [ ! -f "$etc/cluster.key" ]; then
  (umask 077; echo "1 $(od -An -tx1 -N32 /dev/urandom | tr -d ' \n') send" > "$etc/cluster.key")
  echo "wrote a new $etc/cluster.key: copy this same file to every node of the cluster"
else
  echo "kept $etc/cluster.key"
fi
chmod 0600 "$etc/cluster.key"
if [ "$users" = 1 ]; then
  if command -v systemd-tmpfiles >/dev/null; then
    systemd-tmpfiles --create "$lib/tmpfiles.d/affinityd.conf"
  else
    mkdir -p /var/lib/affinityd && chown affinityd:affinityd /var/lib/affinityd && chmod 0750 /var/lib/affinityd
    chown root:affinityd "$etc/affinityd.yaml"
    chown affinityd:affinityd "$etc/cluster.key"
  fi
fi

# Units where locally installed units go: /etc/systemd/system stays the
# administrator's (drop-ins), so a re-run never overwrites an edit.
units="$lib/systemd/system"
mkdir -p "$units"
for u in affinityd.service affinityd-capture@.service; do
  sed -e "s|/opt/affinityd|$prefix|g" -e "s|^ExecStart=/usr/bin/node |ExecStart=$node |" "$src/contrib/systemd/$u" > "$units/$u.new"
  chmod 0644 "$units/$u.new"
  mv "$units/$u.new" "$units/$u"
  if [ -f "$root/etc/systemd/system/$u" ]; then
    echo "install.sh: note: $root/etc/systemd/system/$u (from an earlier install, or yours) overrides $units/$u;" \
      "move your changes to a drop-in (systemctl edit ${u%.service}) and remove it" >&2
  fi
done

share="$root/usr/local/share"
install -D -m 0644 "$src/contrib/man/affinityd.8" "$share/man/man8/affinityd.8"
install -D -m 0644 "$src/contrib/bash-completion/affinityd" "$share/bash-completion/completions/affinityd"

if [ "$systemctl_" = 1 ] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  echo "installed. start it with: systemctl enable --now affinityd"
elif [ -n "$root" ]; then
  echo "staged under $root: the image's systemd creates the user and sets the owners at its first boot (sysusers.d, tmpfiles.d)"
else
  echo "installed under / (systemctl not run)"
fi
