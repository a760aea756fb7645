#!/bin/sh
# Prints the configuration an appliance starts from: the example with the
# control sockets, the management listener and the snapshot file turned on,
# and node.id left unset (it has no default: a node refuses to start until
# it is set, so that two appliances installed alike cannot both be node 1).
# Used by contrib/install.sh and contrib/make-deb.sh.
#   usage: contrib/appliance-config.sh config/affinityd.example.yaml > affinityd.yaml
set -eu
sed -e 's|^  id: 1 .*$|  # id: 1                        # required: set this node'"'"'s id, unique in the cluster (1 to 4294967295)|' \
    -e 's|^\(  snapshotFile:\) ""  |\1 /var/lib/affinityd/table.snap|' \
    -e 's|^\(  socket:\) ""                    |\1 /run/affinityd/control.sock|' \
    -e 's|^\(  readOnlySocket:\) ""            |\1 /run/affinityd/control-ro.sock|' \
    -e 's|^\(  readOnlyGroup:\) ""             |\1 affinityd-view|' \
    -e 's|^\(  enabled:\) false\( *\)$|\1 true\2|' \
    "$1"
