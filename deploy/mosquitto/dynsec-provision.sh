#!/bin/sh
# Provision cabinets and carriers in mosquitto's dynamic-security plugin (dynsec.conf), each
# with its client id pinned to its user name and the same topic rights as acl.example.
#
#   export DYNSEC="-h broker.example.com -p 8883 --cafile ca.pem -u admin -P <admin password>"
#   dynsec-provision.sh cabinet CAB-0001 <password>     # user and client id lockerd-CAB-0001
#   dynsec-provision.sh carrier sf <password>           # user and client id carrier-sf
#   dynsec-provision.sh operator operator <password>    # fleet-watch: status and health only
#
# Create the plugin's file once, before the broker starts:
#   mosquitto_ctrl dynsec init /var/lib/mosquitto/dynamic-security.json admin
# Every command goes through the running broker; nothing here needs a restart.
set -eu
PREFIX=${PREFIX:-lockers}
ctl() {
    # DYNSEC is a list of options on purpose (word splitting).
    # shellcheck disable=SC2086
    mosquitto_ctrl ${DYNSEC:?set DYNSEC to the connection options of mosquitto_ctrl} dynsec "$@" >/dev/null
}
acl() { ctl addRoleACL "$1" "$2" "$3" allow; }

kind=${1:?cabinet, carrier or operator}
id=${2:?the cabinet or carrier id}
password=${3:?the password}
case "$kind" in
cabinet)
    user="lockerd-$id"; role="cabinet-$id"; base="$PREFIX/$id"
    ctl createRole "$role"
    for topic in status state alerts health carriers/+/reply carriers/+/events; do
        acl "$role" publishClientSend "$base/$topic"
    done
    acl "$role" subscribePattern "$base/carriers/+/cmd"
    acl "$role" publishClientReceive "$base/carriers/+/cmd"
    ;;
carrier)
    user="carrier-$id"; role="carrier-$id"
    ctl createRole "$role"
    acl "$role" publishClientSend "$PREFIX/+/carriers/$id/cmd"
    for topic in status state alerts "carriers/$id/reply" "carriers/$id/events"; do
        acl "$role" subscribePattern "$PREFIX/+/$topic"
        acl "$role" publishClientReceive "$PREFIX/+/$topic"
    done
    ;;
operator)
    user="$id"; role="operator-$id"
    ctl createRole "$role"
    for topic in status health; do
        acl "$role" subscribePattern "$PREFIX/+/$topic"
        acl "$role" publishClientReceive "$PREFIX/+/$topic"
    done
    ;;
*)
    echo "unknown kind $kind (cabinet, carrier or operator)" >&2
    exit 2
    ;;
esac
# -c pins the client id: a connection as $user with any other client id is refused.
ctl createClient "$user" -c "$user" -p "$password"
ctl addClientRole "$user" "$role"
echo "$user: client id pinned, role $role"
