# forward.sh: start a command in the background and pass the stop signals this shell gets on to it, once each and
# none lost; sourced by launch/run.sh and launch/requeue.sh. A shell runs a trap only once its foreground child has
# ended, so a command that must hear a signal runs in the background while the shell waits.
#
# Where a signal was lost before (a probe sending USR1 0-30 ms after the start lost 5-7 in 300: the command
# ran on, on Slurm a preempted job that is never saved), and what happens now:
# - before the traps were set, the signal ended the shell: the scripts set their traps first thing (bash's own start,
#   a few ms, cannot be covered);
# - before the command was started, it had nowhere to go: it is kept (pending) and the command is not started at
#   all: cg_fwd_start returns 75 (preempted: nothing ran, so nothing is unsaved; the next start runs it);
# - between fork and exec the child is still a copy of this shell, with this shell's trap handlers: a signal sent to
#   it then was taken by bash and dropped at the exec. The child now first puts USR1 and TERM back to their defaults
#   and says so on a pipe; nothing is sent to it before. A signal that reaches it after that and before the command
#   sets up its handlers stops it (status > 128: the callers take that as preempted, nothing having run that a save
#   would keep); cgtrain holds the stop signals from its first instruction (.preinit_array) and saves after its
#   first step instead.
# Each signal is sent once: cgtrain takes a second one as "exit now, without saving".

# Set by the traps: pending until the command is ready; cg_fwd_got names the last signal this shell got. A script
# may set both from a trap of its own before it sources this file (they are kept).
_cg_fwd_pending=${_cg_fwd_pending:-} cg_fwd_got=${cg_fwd_got:-}
_cg_fwd_child="" _cg_fwd_ready=""
cg_fwd_who=${cg_fwd_who:-${0##*/}}  # the name messages start with

# cg_fwd SIG [GOT]: the action of the trap for GOT (default SIG): SIG goes to the command now if it is ready, else
# when it is (or it is not started).
cg_fwd() {
  cg_fwd_got=${2:-$1}
  if [ -n "$_cg_fwd_ready" ]; then kill -"$1" "$_cg_fwd_child" 2>/dev/null || true; else _cg_fwd_pending=$1; fi
}

# _cg_fwd_not_started CMD: a signal came before CMD started; says so and returns 75 (130 after SIGINT).
_cg_fwd_not_started() {
  local rc=75 what="75 (preempted)"
  _cg_fwd_pending=""  # taken: the next start in this shell (the same command run again) runs
  [ "$cg_fwd_got" != INT ] || rc=130 what="130 (interrupted)"
  echo "$cg_fwd_who: got SIG$cg_fwd_got before $1 started: not starting it (nothing ran, nothing to save); exiting" \
    "$what: run the same command again to start it" >&2
  return "$rc"
}

# cg_fwd_start CMD [ARGS...]: start CMD in the background (its stdin this shell's: a background command's would be
# /dev/null) and return once the child takes signals as CMD will, a pending one sent; 75 without starting CMD when a
# signal came first.
cg_fwd_start() {
  local fifo="" dir fd _
  [ -z "$_cg_fwd_pending" ] || { _cg_fwd_not_started "$1"; return; }
  # The pipe lives for a moment in TMPDIR, else /tmp or /dev/shm: a job whose TMPDIR is gone or read-only still runs.
  for dir in "${TMPDIR:-/tmp}" /tmp /dev/shm; do
    fifo=$(mktemp -u "$dir/cg_fwd.XXXXXX" 2>/dev/null) && mkfifo "$fifo" 2>/dev/null && break
    fifo=""
  done
  [ -n "$fifo" ] || {
    echo "$cg_fwd_who: cannot make a pipe under ${TMPDIR:-/tmp}, /tmp or /dev/shm; set TMPDIR to a writable folder" >&2
    return 2
  }
  exec {fd}<>"$fifo"  # read and write ends open here: the open does not wait, and no EOF can come
  rm -f "$fifo"
  _cg_fwd_ready=""
  (
    trap - USR1 TERM
    echo ready >&"$fd"
    exec {fd}>&-
    if declare -F -- "$1" >/dev/null; then "$@"; else exec "$@"; fi  # a shell function (tests) runs in this child
  ) <&0 &
  _cg_fwd_child=$!
  # The child writes at once; if it is killed first (a signal from outside) there is nothing more to wait for.
  until read -r -t 0.05 -u "$fd" _; do kill -0 "$_cg_fwd_child" 2>/dev/null || break; done
  exec {fd}<&-
  _cg_fwd_ready=1
  if [ -n "$_cg_fwd_pending" ]; then  # came while the child started up
    kill -"$_cg_fwd_pending" "$_cg_fwd_child" 2>/dev/null || true
    _cg_fwd_pending=""
  fi
}

# cg_fwd_wait: wait for the command of cg_fwd_start; returns its exit status. A trapped signal interrupts `wait`
# (status > 128): wait again while the command runs, then collect its own status.
cg_fwd_wait() {
  local rc=0
  while kill -0 "$_cg_fwd_child" 2>/dev/null; do wait "$_cg_fwd_child" || true; done
  wait "$_cg_fwd_child" || rc=$?
  _cg_fwd_child="" _cg_fwd_ready=""
  return "$rc"
}

# cg_fwd_exec CMD [ARGS...]: exec CMD (which then gets the signals itself); 75 without starting it when a signal
# came first. After the traps are reset here a signal ends this shell (status > 128) instead of being dropped at
# the exec.
cg_fwd_exec() {
  trap - USR1 TERM INT
  [ -z "$_cg_fwd_pending" ] || { _cg_fwd_not_started "$1"; return; }
  exec "$@"
}
