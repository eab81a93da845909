#!/bin/sh
# contrib/slurm/submit.sh - submits a sharded clipdex index to Slurm: an
# array job of N shards (index.sbatch) and a merge job (merge.sbatch) that
# runs once every shard succeeded (--dependency=afterok). Prints
# "index JOBID" and "merge JOBID".
#
#   contrib/slurm/submit.sh -m MODEL -o OUTDIR -n N [-s SBATCH_ARG]... PHOTO_ROOT...
#
#   -m MODEL   the model (or CLIPDEX_MODEL)
#   -o OUTDIR  shard databases, the merged index.db and the logs, on a file
#              system every node sees (or CLIPDEX_OUT; default .)
#   -n N       number of shards = array tasks (default 4)
#   -s ARG     one more sbatch argument for both jobs (repeatable: -s
#              --partition=batch -s --time=2:00:00)
# CLIPDEX_BIN, CLIPDEX_MAX_RESTARTS and CLIPDEX_INDEX_ARGS pass on to the
# jobs (see index.sbatch). Example:
#   contrib/slurm/submit.sh -m clip-vit-b32 -o /shared/idx -n 16 /shared/photos
#   then: clipdex search --db /shared/idx/index.db "a dog"
set -u
here=$(cd "$(dirname "$0")" && pwd)
n=4; extra=""
usage() { sed -n '7,14p' "$0" >&2; exit 2; }
while getopts m:o:n:s:h opt; do
    case $opt in
    m) CLIPDEX_MODEL=$OPTARG ;;
    o) CLIPDEX_OUT=$OPTARG ;;
    n) n=$OPTARG ;;
    s) extra="$extra $OPTARG" ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || usage
case $n in ''|*[!0-9]*|0) echo "submit.sh: -n wants a count, got '$n'" >&2; exit 2 ;; esac
: "${CLIPDEX_MODEL:?submit.sh: give -m MODEL}"
CLIPDEX_OUT=$(mkdir -p "${CLIPDEX_OUT:-.}" && cd "${CLIPDEX_OUT:-.}" && pwd) || exit 1
export CLIPDEX_MODEL CLIPDEX_OUT
# photo roots as absolute paths: the jobs run in another directory
roots=""
for r in "$@"; do
    a=$(cd "$r" && pwd) || { echo "submit.sh: no directory '$r'" >&2; exit 2; }
    roots="$roots $a"
done
# shellcheck disable=SC2086 # extra and roots are lists of words
idx=$(sbatch --parsable --array="0-$((n - 1))" --chdir="$CLIPDEX_OUT" \
    --output="$CLIPDEX_OUT/clipdex-index-%A_%a.log" $extra "$here/index.sbatch" $roots) || exit 1
idx=${idx%%;*}
# shellcheck disable=SC2086
mrg=$(sbatch --parsable --dependency="afterok:$idx" --kill-on-invalid-dep=yes --chdir="$CLIPDEX_OUT" \
    --output="$CLIPDEX_OUT/clipdex-merge-%j.log" $extra "$here/merge.sbatch" "$n") || exit 1
echo "index ${idx}"
echo "merge ${mrg%%;*}"
