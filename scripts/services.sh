#!/usr/bin/env bash
# The production stack on this machine, from Debian's packages: PostgreSQL 15, RabbitMQ 3.10 and a
# one-node SLURM 22.05 cluster (with munge). Needs root (or sudo) and apt-get; no systemd.
#
#   bash scripts/services.sh install   # apt-get the packages (idempotent)
#   bash scripts/services.sh start     # install if needed, configure and start all three; idempotent
#   bash scripts/services.sh status    # is each one answering?
#   bash scripts/services.sh stop
#
# PostgreSQL: the Debian cluster 15/main on 127.0.0.1:5432, with a role that may create roles and
# databases (ANHARMAL_PG_ADMIN / ANHARMAL_PG_PASSWORD, default anharmal_admin / anharmal_admin): the
# test suite and `anharmal setup --production` create their own database user and database with it.
# RabbitMQ: guest@127.0.0.1:5672, consumer_timeout disabled as aiida-core's docs advise (a process
# task may wait for hours). SLURM: cluster `anharmal`, node = this host with every core, partition
# `debug`, proctrack/linuxproc (no cgroups), KillWait 5 s, accounting none.
set -euo pipefail
SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
PG_VERSION=15
PG_ADMIN=${ANHARMAL_PG_ADMIN:-anharmal_admin}
PG_PASSWORD=${ANHARMAL_PG_PASSWORD:-anharmal_admin}
PACKAGES="postgresql-$PG_VERSION rabbitmq-server slurmd slurmctld slurm-client munge"

log() { echo "[services] $*"; }

install_packages() {
    local missing=""
    for p in $PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    [ -z "$missing" ] && return 0
    log "installing$missing"
    $SUDO apt-get update -q
    # the packages do not start their services here (no systemd; this image's policy-rc.d forbids it):
    # this script starts them
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq 1 "$((seconds * 2))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
    log "$what did not come up within ${seconds} s"; return 1
}

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q; }
start_postgres() {
    pg_lsclusters -h | grep -q "^$PG_VERSION *main" || $SUDO pg_createcluster "$PG_VERSION" main
    if ! pg_up; then
        # a server killed with its machine leaves postmaster.pid; PostgreSQL refuses to start while that pid
        # belongs to any live process, which a fresh machine may have reused
        local pidfile="/var/lib/postgresql/$PG_VERSION/main/postmaster.pid" pid
        if [ -f "$pidfile" ]; then
            pid=$(head -1 "$pidfile")
            if ! ps -p "$pid" -o comm= 2>/dev/null | grep -q postgres; then
                log "removing the stale $pidfile (pid $pid)"
                $SUDO rm -f "$pidfile" /var/run/postgresql/.s.PGSQL.5432.lock
            fi
        fi
        $SUDO pg_ctlcluster "$PG_VERSION" main start
    fi
    wait_for 60 PostgreSQL pg_up
    # names and password as psql variables, quoted by format(): any role name or password is safe
    (cd / && $SUDO runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -v admin="$PG_ADMIN" -v pw="$PG_PASSWORD" <<'SQL'
SELECT format(CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = :'admin')
              THEN 'ALTER ROLE %I LOGIN CREATEDB CREATEROLE PASSWORD %L'
              ELSE 'CREATE ROLE %I LOGIN CREATEDB CREATEROLE PASSWORD %L' END, :'admin', :'pw') \gexec
SQL
    )
    log "PostgreSQL $PG_VERSION on 127.0.0.1:5432, admin role $PG_ADMIN"
}

rabbit_up() { $SUDO rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; }
start_rabbitmq() {
    # aiida-core: RabbitMQ >= 3.8.15 closes a channel whose task is not acknowledged within 30 min;
    # an AiiDA process may hold its task for days, so the timeout is switched off.
    $SUDO mkdir -p /etc/rabbitmq
    echo '[ {rabbit, [ {consumer_timeout, undefined} ]} ].' | $SUDO tee /etc/rabbitmq/advanced.config >/dev/null
    if ! rabbit_up; then
        $SUDO mkdir -p /var/log/rabbitmq /var/lib/rabbitmq
        $SUDO chown rabbitmq:rabbitmq /var/log/rabbitmq /var/lib/rabbitmq
        # detached from this shell (its own session, no inherited output) so that callers do not wait on it
        (cd /var/lib/rabbitmq && $SUDO setsid runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq \
            /usr/lib/rabbitmq/bin/rabbitmq-server </dev/null >/var/log/rabbitmq/startup_log 2>&1 &) </dev/null >/dev/null 2>&1
        wait_for 120 RabbitMQ rabbit_up
    fi
    if ! $SUDO rabbitmqctl -q environment 2>/dev/null | grep -q 'consumer_timeout,undefined'; then
        # started before this configuration existed: set it in the running server too
        $SUDO rabbitmqctl -q eval 'application:set_env(rabbit, consumer_timeout, undefined).' >/dev/null
    fi
    log "RabbitMQ on 127.0.0.1:5672 ($($SUDO rabbitmqctl -q environment 2>/dev/null \
        | grep -o 'consumer_timeout,[a-z0-9]*' || echo 'consumer_timeout not read'))"
}

write_slurm_conf() {
    local host cpus memory
    host=$(hostname -s)
    cpus=$(nproc)
    memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
    $SUDO mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
    $SUDO tee /etc/slurm/slurm.conf >/dev/null <<EOF
# Written by aiida-anharmal's scripts/services.sh: a one-node cluster on this machine.
ClusterName=anharmal
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
KillWait=5
InactiveLimit=0
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

# exact states: `idle*` (not responding) and `idle~` (powered down) take no jobs, as in cli/production.py
slurm_up() { sinfo -h -o '%T' 2>/dev/null | grep -qxE '(idle|mixed|allocated)'; }
start_slurm() {
    write_slurm_conf
    [ -s /etc/munge/munge.key ] || $SUDO mungekey --create --force
    $SUDO mkdir -p /run/munge /var/log/munge /var/lib/munge
    $SUDO chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
    $SUDO chmod 0400 /etc/munge/munge.key
    # --force: start even over the socket of a munged that was killed (a machine handed over as it was)
    pgrep -x munged >/dev/null || $SUDO runuser -u munge -- munged --force
    wait_for 30 munge munge -n
    # -c: the cluster starts without the jobs a killed controller saved (they would take the cores)
    pgrep -x slurmctld >/dev/null || $SUDO slurmctld -c
    pgrep -x slurmd >/dev/null || $SUDO slurmd
    if ! wait_for 60 SLURM slurm_up; then
        $SUDO scontrol update NodeName="$(hostname -s)" State=RESUME || true
        wait_for 30 SLURM slurm_up
    fi
    log "SLURM: $(sinfo -h -o 'partition %P, node %N, %c CPUs, %T')"
}

status() {
    local rc=0
    if pg_up; then log "PostgreSQL: up"; else log "PostgreSQL: down"; rc=1; fi
    if rabbit_up; then log "RabbitMQ: up"; else log "RabbitMQ: down"; rc=1; fi
    if slurm_up; then log "SLURM: up ($(sinfo -h -o '%N %T'))"; else log "SLURM: down"; rc=1; fi
    return $rc
}

stop() {
    pgrep -x slurmd >/dev/null && $SUDO pkill -x slurmd || true
    pgrep -x slurmctld >/dev/null && $SUDO pkill -x slurmctld || true
    pgrep -x munged >/dev/null && $SUDO pkill -x munged || true
    rabbit_up && $SUDO rabbitmqctl -q stop || true
    pg_up && $SUDO pg_ctlcluster "$PG_VERSION" main stop || true
    log stopped
}

case "${1:-start}" in
    install) install_packages ;;
    start) install_packages; start_postgres; start_rabbitmq; start_slurm ;;
    status) status ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|status|stop" >&2; exit 2 ;;
esac
