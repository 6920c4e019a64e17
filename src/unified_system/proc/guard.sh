# The guard, as a POSIX shell script (proc/lifeline.py starts it as `/bin/sh guard.sh SIGNUM
# SLEEP`; guard.py is the same guard in Python, for a system without /bin/sh). It reads the
# supervisor's lines on stdin, a pipe whose only writer is the supervisor (close-on-exec):
#   +PGID KILL_AFTER_MS   a group spawned, with its stop timeout in milliseconds
#   -PGID                 a group seen empty
# End of file means the supervisor is gone (killed, or closing): every group still listed
# gets SIGNUM, and a group still not empty KILL_AFTER_MS later gets SIGKILL, so a child
# that ignores SIGTERM cannot outlive the supervisor holding its port.
# dash runs this in ~1.7 MB of RSS (~0.3 MB PSS), where `python -I -S` needs ~9.5 (~4):
# bench/RESULTS.md, "Footprint". Lines hold digits only; globbing is off all the same.
set -f
trap '' INT TERM HUP TSTP TTIN TTOU   # a terminal's ^C or a group-wide TERM is for the supervisor
printf unified-guard 2>/dev/null >/proc/self/comm
sig=$1 nap=$2 groups=" "

drop() {   # remove group $1 from " pgid:ms pgid:ms "
  case $groups in
    *" $1:"*)
      head=${groups%%" $1:"*} tail=${groups#*" $1:"}
      groups="$head ${tail#* }" ;;
  esac
}

while IFS= read -r line; do
  case $line in
    +*) set -- ${line#+}; drop "$1"; groups="$groups$1:${2:-10000} " ;;
    -*) drop "${line#-}" ;;
  esac
done

now() {   # milliseconds since boot, from the kernel's clock (no fork)
  read -r up _ </proc/uptime
  ms=$(( ${up%.*} * 1000 + 1${up#*.}0 - 1000 ))
}

scan() {   # live: " pgid pgid ... " of every process that is not a zombie
  live=" "
  set +f
  for st in /proc/[0-9]*/stat; do
    read -r l 2>/dev/null <"$st" || continue
    set -- ${l##*) }   # state ppid pgrp ...: after the command name, which may hold spaces
    case $1 in Z|X) ;; *) live="$live$3 " ;; esac
  done
  set -f
}

alive() {   # whether group $1 has a process that is not a zombie: kill -0 counts zombies
  pg=$1     # too, and an init that does not reap (some containers' PID 1) keeps them for ever
  kill -s 0 -- "-$pg" 2>/dev/null || return 1
  if read -r l 2>/dev/null <"/proc/$pg/stat"; then
    set -- ${l##*) }
    case $1 in Z|X) ;; *) [ "$3" = "$pg" ] && return 0 ;; esac   # the leader lives: no scan
  fi
  [ -n "$live" ] || scan   # once per poll, and only when the leader is gone
  case $live in *" $pg "*) return 0 ;; esac
  return 1
}

for g in $groups; do
  kill -s "$sig" -- "-${g%%:*}" 2>/dev/null
done
[ "$sig" = 9 ] && exit 0
now; start=$ms
while [ "$groups" != " " ]; do
  now; left=" " live=
  for g in $groups; do
    alive "${g%%:*}" || continue
    if [ $((ms - start)) -ge "${g#*:}" ]; then
      kill -s 9 -- "-${g%%:*}" 2>/dev/null
    else
      left="$left$g "
    fi
  done
  groups=$left
  [ "$groups" = " " ] || "$nap" 0.05 || exit 1   # no event says a group is empty: a bounded poll
done
