# Shared helpers for the test harness scripts (sourced, not run).
# Everything here works as root (CI) and as a normal user (a developer's machine).

# Files we write must be readable by the daemons' own users (postgres, dovecot, postfix,
# nobody), whatever umask the caller has.
umask 022

harness_is_root() { [ "$(id -u)" = 0 ]; }

# free_ports N: N distinct free TCP ports on 127.0.0.1. They are bound all at once to port 0
# (so the kernel picks them and they differ), then released; a caller that loses a race for
# one simply retries with new ones.
free_ports() {
  python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

# harness_mktemp PREFIX: make a new private temp dir and print its absolute path.
# Parent: $BUZON_TEST_RUN_DIR when set (tests/run.sh sets it, so that it can stop and delete
# anything a test run started, even a stack leaked by a killed test), else ${TMPDIR:-/tmp}.
# As root the dir is made 0711 so that the daemons' users (nobody, postfix, postgres) can
# traverse it; if they can't reach it at all (say TMPDIR=$HOME/tmp under a 0700 home), it
# falls back to /tmp.
harness_mktemp() {
  local prefix=$1 base d
  base=${BUZON_TEST_RUN_DIR:-${TMPDIR:-/tmp}}
  d=$(mktemp -d "$base/$prefix.XXXXXX")
  d=$(cd "$d" && pwd -P)
  if harness_is_root; then
    chmod 711 "$d"
    if ! runuser -u nobody -- test -x "$d" 2>/dev/null; then
      rmdir "$d"
      d=$(mktemp -d "/tmp/$prefix.XXXXXX")
      chmod 711 "$d"
    fi
  fi
  printf '%s\n' "$d"
}

# alive PID: the process exists and is not a zombie. (A stopped daemon is re-parented to
# PID 1, and until PID 1 reaps it `kill -0` still succeeds on the zombie.)
alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]
}

# wait_gone PID SECONDS: wait until PID is gone; 1 if it is still alive after SECONDS.
wait_gone() {
  local pid=$1 i
  for ((i = 0; i < $2 * 20; i++)); do
    alive "$pid" || return 0
    sleep 0.05
  done
  ! alive "$pid"
}

# show_log FILE [LINES]: copy the tail of a log to stderr (CI keeps no temp dirs).
show_log() {
  [ -s "$1" ] || return 0
  echo "----- last ${2:-30} lines of $1 -----" >&2
  tail -n "${2:-30}" "$1" >&2
}
