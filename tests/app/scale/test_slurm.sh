#!/bin/sh
# tests/app/scale/test_slurm.sh - contrib/slurm on a real one-host Slurm
# cluster that the test starts itself over loopback: munged with its own
# key and socket, slurmctld and slurmd on free TCP ports, all state, logs
# and pid files in a temp dir (no system service is touched). submit.sh
# submits an array of 4 shards over the 1000 sample photos (tiny seeded
# model) and the dependent merge job. Task 2's first attempt is killed with
# SIGKILL in the middle of indexing (once its shard database holds some
# rows); index.sbatch requeues it (scontrol requeue), the second attempt
# (SLURM_RESTART_COUNT=1) embeds only the rest, and the merged index must
# equal a one-machine index of the same photos: the same paths and
# bitwise-equal embeddings (sqlite3 dumps in hex, as test_shard.sh).
NAME=test_slurm
. "$(dirname "$0")/../lib.sh"
if [ ! -x "$CLIPDEX" ]; then fail "$CLIPDEX is missing (build it first)"; done_; fi
for b in munged munge slurmctld slurmd sbatch scontrol sinfo; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
        { skip "$b not installed (tools/deps.sh test installs slurm-wlm and munge)"; done_; }
done
if [ "$(id -u)" != 0 ]; then skip "slurmd runs jobs only as root here (not root)"; done_; fi
if ! command -v sqlite3 >/dev/null 2>&1; then skip "sqlite3 CLI not installed"; done_; fi
PHOTOS=$SHARED/data/imagenet-samples
if [ ! -d "$PHOTOS" ]; then skip "$PHOTOS is missing"; done_; fi
PATH=$PATH:/usr/sbin:/sbin
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-slurm.XXXXXX") || { fail "mktemp"; done_; }
chmod 700 "$TMP"
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_DB CLIPDEX_SHARD_COUNT CLIPDEX_OUT CLIPDEX_BIN \
    CLIPDEX_INDEX_ARGS CLIPDEX_MAX_RESTARTS SLURM_JOB_ID SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX
CLIPDEX_HOME=$TMP/no-models; export CLIPDEX_HOME
ROOT=$(pwd)
C=$TMP/cluster
mkdir -p "$C/state" "$C/spool" "$C/munge" && chmod 700 "$C/munge"

# the daemons: stopped by done_ (cleanup) and by the trap on signals
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    for p in $pids; do
        i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$p" 2>/dev/null
    done
    pids=""
}
trap 'cleanup; rm -rf "$TMP"; exit 1' INT TERM HUP
logs() {
    for f in "$C"/munged.log "$C"/slurmctld.log "$C"/slurmd.log "$TMP"/out/*.log; do
        [ -f "$f" ] && { echo "--- $f (tail)" >&2; tail -n 40 "$f" >&2; }
    done
}
die() { fail "$*"; logs; done_; }
# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s
wait_for() {
    t=$1; d=$2; shift 2
    end=$(($(date +%s) + t))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || { fail "timed out after ${t}s: $d"; return 1; }
        sleep 0.2
    done
    ok
}
# two free TCP ports on loopback
ports=$(python3 -c 'import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' 2>/dev/null) ||
    ports="$((20000 + $$ % 20000)) $((40001 + $$ % 20000))"
set -- $ports; CTLD_PORT=$1; SLURMD_PORT=$2

# munge: a fresh key, our own socket
dd if=/dev/urandom of="$C/munge/key" bs=1024 count=1 2>/dev/null && chmod 400 "$C/munge/key"
SOCK=$C/munge/sock
munged --force --key-file="$C/munge/key" --socket="$SOCK" --pid-file="$C/munge/pid" \
    --seed-file="$C/munge/seed" --log-file="$C/munged.log" 2>>"$C/munged.log" ||
    die "munged did not start"
wait_for 10 "munged pid file" test -s "$C/munge/pid" || die "munged"
pids="$(cat "$C/munge/pid")"
check "munge credential round trip" sh -c "munge -S '$SOCK' -n | unmunge -S '$SOCK' >/dev/null"

CPUS=$(nproc)
SLURM_CONF=$C/slurm.conf; export SLURM_CONF
cat >"$SLURM_CONF" <<CONF
# one-host cluster of tests/app/scale/test_slurm.sh
ClusterName=clipdextest
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again after cred_expire+1 s (default 120)
AuthInfo=socket=$SOCK,cred_expire=5
StateSaveLocation=$C/state
SlurmdSpoolDir=$C/spool
SlurmctldPidFile=$C/slurmctld.pid
SlurmdPidFile=$C/slurmd.pid
SlurmctldLogFile=$C/slurmctld.log
SlurmdLogFile=$C/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
JobRequeue=1
ReturnToService=2
MinJobAge=600
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=100 State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -D -i -f "$SLURM_CONF" >>"$C/slurmctld.log" 2>&1 &
pids="$pids $!"
slurmd -D -f "$SLURM_CONF" -N localhost >>"$C/slurmd.log" 2>&1 &
pids="$pids $!"
idle() { sinfo -h -N -o %t | grep -qx idle; }
wait_for 60 "the node idle (sinfo)" idle || die "cluster did not come up"

# the model, the photos, the one-machine reference
MODEL=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 1 --out "$MODEL" --vocab "$SHARED/data/vocab" >/dev/null 2>"$TMP/err" \
    && ok || { cat "$TMP/err" >&2; die "genmodel failed"; }
mkdir "$TMP/lib" && cp "$PHOTOS"/*.JPEG "$TMP/lib/" || die "copy photos"
N=$(ls "$TMP/lib" | wc -l)
"$CLIPDEX" index --model "$MODEL" --db "$TMP/one.db" -q "$TMP/lib" 2>"$TMP/err" && ok ||
    { cat "$TMP/err" >&2; fail "one-machine index"; }

# the clipdex the jobs run: task 2's first attempt is killed with SIGKILL
# once its shard database holds committed rows
cat >"$TMP/clipdex-hook" <<HOOK
#!/bin/sh
# test_slurm's stand-in for clipdex: kills task 2's first attempt mid-index
if [ "\${SLURM_ARRAY_TASK_ID:-}" != 2 ] || [ "\${SLURM_RESTART_COUNT:-0}" != 0 ]; then
    exec "$ROOT/$CLIPDEX" "\$@"
fi
"$ROOT/$CLIPDEX" "\$@" --batch 4 &
p=\$!
db=$TMP/out/index.shard-2.db
n=0
while kill -0 \$p 2>/dev/null; do
    n=\$(sqlite3 "\$db" "SELECT count(*) FROM files" 2>/dev/null || echo 0)
    [ "\${n:-0}" -gt 0 ] && break
    sleep 0.02
done
kill -9 \$p && echo "hook: killed clipdex with \$n rows committed" && echo "\$n" >"$TMP/killed-at"
wait \$p
HOOK
chmod +x "$TMP/clipdex-hook"
CLIPDEX_BIN=$TMP/clipdex-hook CLIPDEX_INDEX_ARGS="--json --threads 1 --decoders 1" \
    contrib/slurm/submit.sh -m "$MODEL" -o "$TMP/out" -n 4 "$TMP/lib" >"$TMP/ids" 2>"$TMP/err" ||
    { cat "$TMP/err" >&2; die "submit.sh failed"; }
ok
idx=$(sed -n 's/^index //p' "$TMP/ids"); mrg=$(sed -n 's/^merge //p' "$TMP/ids")
check "submit.sh prints both job ids (got '$idx' '$mrg')" [ -n "$idx" ] && [ -n "$mrg" ] && [ "$idx" != "$mrg" ]
jstate() { scontrol -o show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1; }
check "the merge job waits on the array (Dependency=afterok:$idx)" \
    sh -c "scontrol -o show job $mrg | grep -q 'Dependency=afterok:${idx}_\*'"
done_state() { case $(jstate "$mrg") in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL) return 0 ;; esac; return 1; }
wait_for 150 "the merge job to end" done_state || die "jobs did not finish"
check "merge job COMPLETED (got $(jstate "$mrg"))" [ "$(jstate "$mrg")" = COMPLETED ]
for i in 0 1 2 3; do
    s=$(jstate "${idx}_$i")
    check "array task $i COMPLETED (got $s)" [ "$s" = COMPLETED ]
done
r2=$(scontrol -o show job "${idx}_2" | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
check "task 2 was requeued once (Restarts=$r2)" [ "$r2" = 1 ]
r0=$(scontrol -o show job "${idx}_0" | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')
check "task 0 ran once (Restarts=$r0)" [ "$r0" = 0 ]

# task 2's log: two attempts, the second resumed what the first had committed
L2=$TMP/out/clipdex-index-${idx}_2.log
check "task 2's log has attempt 0 and attempt 1" \
    sh -c "grep -q 'task 2 of 4 restart 0' '$L2' && grep -q 'task 2 of 4 restart 1' '$L2'"
check "task 2's first attempt was killed and requeued" \
    sh -c "grep -q 'exited 137 (restart 0)' '$L2' && grep -q 'requeueing job' '$L2'"
k=$(cat "$TMP/killed-at" 2>/dev/null)
share=$(sqlite3 "$TMP/out/index.shard-2.db" "SELECT count(*) FROM files")
check "the kill came mid-index ($k of $share rows committed)" [ "${k:-0}" -gt 0 ] && [ "$k" -lt "$share" ]
json=$(grep '"unchanged"' "$L2" | tail -n 1)
unch=$(echo "$json" | sed -n 's/.*"unchanged":\([0-9]*\).*/\1/p')
emb=$(echo "$json" | sed -n 's/.*"embedded":\([0-9]*\).*/\1/p')
check "the second attempt kept the committed rows (unchanged $unch >= $k)" [ "${unch:-0}" -ge "${k:-1}" ]
check "the second attempt embedded only the rest ($emb + $unch = $share)" [ $((${emb:-0} + ${unch:-0})) -eq "$share" ]

# the merged index == the one-machine index
dump() {
    sqlite3 "$1" "SELECT hex(f.path), hex(i.embedding) FROM files f JOIN images i ON i.hash = f.hash
                  ORDER BY f.path" > "$2"
}
dump "$TMP/one.db" "$TMP/one.txt"
dump "$TMP/out/index.db" "$TMP/merged.txt" 2>/dev/null
check "one-machine dump has the $N photos" [ "$(wc -l < "$TMP/one.txt")" -eq "$N" ]
check "merged index == one-machine index (paths, embeddings bitwise)" cmp -s "$TMP/one.txt" "$TMP/merged.txt"
[ "$failed" -eq 0 ] || logs
done_
