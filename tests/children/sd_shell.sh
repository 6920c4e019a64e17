#!/bin/bash
# A service whose main is bash and whose sd_notify messages all come from short-lived
# programs, as in a shell-script service: the real `systemd-notify`, or a python helper
# that sends with sendto() and exits at once.
#   sd_shell.sh systemd-notify COUNT_FILE
#   sd_shell.sh helper PYTHON COUNT_FILE
# It sends READY=1, then WATCHDOG=1 every 0.2 s, writing how many it sent to COUNT_FILE.
set -u
mode=$1
if [ "$mode" = helper ]; then
  py=$2; count=$3
  send() { "$py" -I -S "$(dirname "$0")/short_sender.py" "$@"; }
else
  count=$2
  send() { systemd-notify "$@"; }
fi
if [ "$mode" = helper ]; then send READY=1 STATUS=up; else send --ready --status=up; fi
# A helper that exits at once races the supervisor's read of its ancestry in /proc (as
# systemd's NotifyAccess=all does; the kernel gives an unprivileged reader no other proof),
# so under heavy load one message may be lost: the helper repeats READY=1 with each beat.
beat=WATCHDOG=1
[ "$mode" = helper ] && beat=$'READY=1\nWATCHDOG=1'
n=0
while :; do
  send "$beat"
  n=$((n + 1))
  echo "$n" > "$count.tmp" && mv -f "$count.tmp" "$count"
  sleep 0.2
done
