#!/usr/bin/env bash
# A throwaway one-node Slurm cluster on this machine, for testing the Slurm
# side of rarts (job arrays, requeue, signals) without a real cluster.
#
# Usage: scripts/slurm-local.sh start|stop|status
#
#   start   Installs Debian's slurm-wlm and munge packages if they are missing
#           (apt-get, through sudo when not root), then starts munged,
#           slurmctld and slurmd directly (no systemd), as the current user,
#           and waits until the node is idle. Its only output on stdout is
#           the line to evaluate so that client commands (sbatch, squeue,
#           scontrol, scancel, sinfo) find this cluster:
#               eval "$(scripts/slurm-local.sh start)"
#           The same line is written to $DIR/env:   . "$DIR/env"
#           Starting a cluster that is already up does nothing and succeeds.
#   stop    Cancels the cluster's jobs, stops the daemons this script started
#           (found through the pid files in $DIR, never by name) and removes
#           the files it made in $DIR.
#   status  Says whether the cluster is up; exit 0 (and the export line on
#           stdout) if it is, 1 if not.
#
# Everything lives in one folder, $DIR: slurm.conf, the munge key and socket,
# controller state, slurmd spool, logs and pid files. Nothing under /etc is
# read or changed, and the daemons listen on their own ports, so a system
# Slurm or munge on the same machine is left alone.
#
# Environment:
#   SLURM_LOCAL_DIR      the folder (default /tmp/rarts-slurm)
#   SLURM_LOCAL_PORT     slurmctld port; slurmd uses the next one (default 16817)
#   SLURM_LOCAL_TIMEOUT  seconds to wait for the node to come up (default 60)
#   SLURM_LOCAL_KEEP     if 1, stop leaves the folder (and its logs) in place
#
# The cluster: one node (this machine's CPU count and memory, less some
# headroom), one partition "local" (default, no time limit), select/cons_tres
# with cores and memory as consumable resources (a job that asks for no
# memory gets memory-per-CPU = node memory / CPUs), requeue allowed, short
# timeouts. There is no accounting database: job completions are logged to
# $DIR/log/jobcomp.log, which `sacct -c` reads (with warnings on array jobs),
# and squeue/scontrol show a finished job for MinJobAge (60 s).
set -euo pipefail

dir="${SLURM_LOCAL_DIR:-/tmp/rarts-slurm}"
port="${SLURM_LOCAL_PORT:-16817}"
wait_s="${SLURM_LOCAL_TIMEOUT:-60}"
keep="${SLURM_LOCAL_KEEP:-0}"

# Daemons live in /usr/sbin on Debian, which a non-root PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

note() { echo "slurm-local: $*" >&2; }
starting=0
die() {
  echo "slurm-local: error: $*" >&2
  # A failed start leaves no daemon behind, but keeps the logs to read.
  if [ "$starting" = 1 ]; then
    starting=0
    keep=1 cmd_stop
  fi
  exit 1
}
have() { command -v "$1" > /dev/null 2>&1; }

# slurm.conf needs absolute paths without blanks.
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
case "$dir" in *[[:space:]]*) die "SLURM_LOCAL_DIR must not contain blanks: '$dir'" ;; esac
conf="$dir/slurm.conf"
munge_socket="$dir/munge/munge.socket"
# Marks $dir as made by this script: only then does stop delete in it.
stamp="$dir/.slurm-local"

# Prints the last lines of a log file, indented, to stderr.
log_tail() {
  if [ -s "$1" ]; then
    echo "  --- last lines of $1 ---" >&2
    tail -n "${2:-20}" "$1" | sed 's/^/  /' >&2
  else
    echo "  ($1 is empty or missing)" >&2
  fi
}

# alive PID: the process exists and is not a zombie (where init is slow to
# reap, a dead daemon can linger as one).
alive() {
  local state
  state="$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null || true)"
  [ -n "$state" ] && [ "$state" != Z ]
}

# pid_of NAME: the pid in $dir/run/NAME.pid if that process is alive and is
# still NAME (guards against a recycled pid); prints nothing otherwise.
pid_of() {
  local file="$dir/run/$1.pid" pid comm
  [ -s "$file" ] || return 0
  pid="$(tr -dc 0-9 < "$file")"
  [ -n "$pid" ] || return 0
  comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
  if [ "$comm" = "$1" ] && alive "$pid"; then
    echo "$pid"
  fi
}

up() { [ -n "$(pid_of "$1")" ]; }

# Client commands of this cluster, whatever the caller's environment says.
client() { SLURM_CONF="$conf" "$@"; }

export_line() { echo "export SLURM_CONF=$conf"; }

# --- installing ---------------------------------------------------------

install_packages() {
  local need=()
  for cmd in slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
    have "$cmd" || { need+=(slurm-wlm); break; }
  done
  for cmd in munged munge unmunge; do
    have "$cmd" || { need+=(munge); break; }
  done
  [ "${#need[@]}" -eq 0 ] && return 0

  have apt-get || die "Slurm or munge is missing (${need[*]}) and apt-get is not available to install it; install the packages by hand"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    have sudo || die "installing ${need[*]} needs root, and sudo is not available"
    sudo=(sudo)
  fi
  note "installing ${need[*]} with apt-get"
  local log="${TMPDIR:-/tmp}/slurm-local-apt.$$.log"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "${need[@]}" > "$log" 2>&1; then
    # A fresh machine may have no package lists yet.
    note "apt-get install failed; running apt-get update and trying again"
    if ! { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update &&
           "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
             apt-get install -y --no-install-recommends "${need[@]}"; } > "$log" 2>&1; then
      log_tail "$log"
      die "apt-get install ${need[*]} failed (full log: $log)"
    fi
  fi
  rm -f "$log"
  for cmd in slurmctld slurmd sbatch munged; do
    have "$cmd" || die "$cmd is still missing after installing ${need[*]}"
  done
}

# --- configuration ------------------------------------------------------

# Memory for the node, in MiB: the smaller of what slurmd detects and what
# /proc/meminfo (or a cgroup limit) says, less 5% (at least 256 MiB) headroom.
node_memory_mib() {
  local mem detected limit headroom
  mem=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
  detected="$(slurmd -C 2>/dev/null | tr ' ' '\n' | sed -n 's/^RealMemory=//p' | head -n1 || true)"
  if [ -n "$detected" ] && [ "$detected" -gt 0 ] && [ "$detected" -lt "$mem" ]; then
    mem="$detected"
  fi
  limit="$(cat /sys/fs/cgroup/memory.max 2>/dev/null || true)"
  if [[ "$limit" =~ ^[0-9]+$ ]] && [ $(( limit / 1048576 )) -lt "$mem" ]; then
    mem=$(( limit / 1048576 ))
  fi
  headroom=$(( mem / 20 ))
  [ "$headroom" -ge 256 ] || headroom=256
  echo $(( mem - headroom ))
}

write_conf() {
  local host cpus mem user
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem="$(node_memory_mib)"
  [ "$mem" -gt 0 ] || die "could not work out this machine's memory"
  user="$(id -un)"
  cat > "$conf" <<EOF
# One-node test cluster made by scripts/slurm-local.sh; rewritten at each start.
ClusterName=rarts-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user

# Authentication through this cluster's own munged. cred_expire (default
# 120 s) is also how long a requeued batch job waits before it may start again.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$munge_socket,cred_expire=10

StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$dir/plugstack.conf
MailProg=/bin/true

# No cgroups: plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log

SchedulerType=sched/backfill
# Frequent scheduling passes, so that a requeued job starts again promptly.
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$(( mem / cpus ))

# Quick failure detection and clean-up; jobs may be requeued.
JobRequeue=1
ReturnToService=2
SlurmctldTimeout=10
SlurmdTimeout=10
KillWait=5
MinJobAge=60
InactiveLimit=0
WaitTime=0

NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  : > "$dir/plugstack.conf"
  note "node $host: $cpus CPUs, $mem MiB"
}

# --- daemons ------------------------------------------------------------

start_munged() {
  local key="$dir/munge/munge.key" log="$dir/log/munged.log"
  if [ ! -s "$key" ]; then
    if have mungekey; then
      mungekey --create --keyfile="$key" > /dev/null 2>&1 || rm -f "$key"
    fi
    [ -s "$key" ] || dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
    chmod 600 "$key"
  fi
  rm -f "$munge_socket" "$munge_socket.lock"
  if ! munged --socket="$munge_socket" --key-file="$key" \
      --pid-file="$dir/run/munged.pid" --log-file="$log" \
      --seed-file="$dir/munge/munged.seed" >> "$log" 2>&1; then
    log_tail "$log"
    die "munged failed to start"
  fi
  # Wait for the socket to answer a credential round trip.
  local i
  for i in $(seq 1 50); do
    if munge -n -S "$munge_socket" 2>/dev/null | unmunge -S "$munge_socket" > /dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  log_tail "$log"
  die "munged started but its socket $munge_socket does not answer"
}

# start_daemon NAME ARGS...: starts a Slurm daemon (which detaches itself)
# and waits for its pid file to name a live process.
start_daemon() {
  local name="$1"; shift
  local log="$dir/log/$name.log" i
  if ! "$name" "$@" >> "$dir/log/$name.stderr" 2>&1; then
    log_tail "$dir/log/$name.stderr"
    log_tail "$log"
    die "$name failed to start"
  fi
  for i in $(seq 1 100); do
    up "$name" && return 0
    sleep 0.1
  done
  log_tail "$dir/log/$name.stderr"
  log_tail "$log"
  die "$name exited right after starting"
}

wait_for_node() {
  local i state=""
  for i in $(seq 1 "$wait_s"); do
    for name in munged slurmctld slurmd; do
      if ! up "$name"; then
        log_tail "$dir/log/$name.log"
        die "$name died while the node was coming up"
      fi
    done
    state="$(client sinfo -h -N -o '%T' 2>/dev/null | head -n1 || true)"
    if [ "$state" = "idle" ]; then
      return 0
    fi
    sleep 1
  done
  client scontrol show node >&2 2>/dev/null || true
  log_tail "$dir/log/slurmctld.log"
  log_tail "$dir/log/slurmd.log"
  die "the node is not idle after ${wait_s}s (state: ${state:-unknown})"
}

# stop_pid NAME: stops the daemon named in our pid file, TERM then KILL.
stop_pid() {
  local pid i
  pid="$(pid_of "$1")"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    alive "$pid" || { note "stopped $1 ($pid)"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  note "killed $1 ($pid), which ignored SIGTERM for 10s"
}

# slurmstepd processes of this cluster still alive after slurmd (a job that
# outlived the cancel): slurmstepd clears its environment, but it keeps its
# working folder in, and its log open under, $dir.
stray_stepds() {
  local p
  for p in /proc/[0-9]*; do
    [ -O "$p" ] || continue
    [ "$(cat "$p/comm" 2>/dev/null || true)" = slurmstepd ] || continue
    case "$(readlink "$p/cwd" 2>/dev/null || true)" in
      "$dir"/*) echo "${p#/proc/}"; continue ;;
    esac
    if ls -l "$p/fd" 2>/dev/null | grep -qF -- "-> $dir/"; then
      echo "${p#/proc/}"
    fi
  done
}

# kill_tree PID: kills PID's descendants (deepest first), then PID.
kill_tree() {
  local child
  for child in $(pgrep -P "$1" || true); do
    kill_tree "$child"
  done
  kill -KILL "$1" 2>/dev/null || true
}

# --- commands -----------------------------------------------------------

cmd_status() {
  local all=1 name pid
  for name in munged slurmctld slurmd; do
    pid="$(pid_of "$name")"
    if [ -n "$pid" ]; then
      note "$name running (pid $pid)"
    else
      note "$name not running"
      all=0
    fi
  done
  if [ "$all" -eq 1 ]; then
    note "cluster up; node: $(client sinfo -h -N -o '%N %T' 2>/dev/null || echo '?')"
    export_line
    return 0
  fi
  note "cluster in $dir is not up"
  return 1
}

cmd_stop() {
  # Cancel jobs first, so that no slurmstepd outlives slurmd.
  if up slurmctld && [ -n "$(client squeue -h -o %i 2>/dev/null || true)" ]; then
    note "cancelling the cluster's jobs"
    client scancel --partition=local 2>/dev/null || true
    local i
    for i in $(seq 1 15); do
      [ -n "$(client squeue -h -o %i 2>/dev/null || true)" ] || break
      sleep 1
    done
  fi
  stop_pid slurmd
  stop_pid slurmctld
  stop_pid munged
  local stray
  for stray in $(stray_stepds); do
    note "killing left-over slurmstepd $stray and its job's processes"
    kill_tree "$stray"
  done
  if [ "$keep" = 1 ]; then
    note "stopped; files kept in $dir"
  elif [ -e "$stamp" ]; then
    # Only what start made, then the folder if nothing else is left in it.
    rm -rf "$dir/slurm.conf" "$dir/plugstack.conf" "$dir/env" "$dir/munge" \
      "$dir/state" "$dir/spool" "$dir/log" "$dir/run" "$stamp"
    if rmdir "$dir" 2>/dev/null; then
      note "stopped; removed $dir"
    else
      note "stopped; removed the cluster's files from $dir"
    fi
  else
    note "stopped"
  fi
}

cmd_start() {
  if up munged && up slurmctld && up slurmd; then
    note "already up ($dir)"
    export_line
    return 0
  fi
  if up munged || up slurmctld || up slurmd; then
    note "cluster in $dir is partly up; stopping it first"
    keep=0 cmd_stop
  fi
  if [ -d "$dir" ] && [ ! -e "$stamp" ] && [ -n "$(ls -A "$dir")" ]; then
    die "$dir is not empty and was not made by this script; set SLURM_LOCAL_DIR to a new folder"
  fi
  install_packages

  local t0=$SECONDS
  starting=1
  mkdir -p "$dir"
  touch "$stamp"
  # Stale state from a cluster that died without stop: start afresh.
  rm -rf "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
  mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log" "$dir/run"
  # munged insists that its folders be writable by their owner only, and
  # that clients may reach its socket.
  chmod 755 "$dir" "$dir/munge" "$dir/log" "$dir/run"

  start_munged
  write_conf
  start_daemon slurmctld -f "$conf"
  start_daemon slurmd -f "$conf" -N "$(hostname -s)"
  wait_for_node
  starting=0
  export_line > "$dir/env"
  note "up in $(( SECONDS - t0 ))s; logs in $dir/log; to use it: . $dir/env"
  export_line
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
