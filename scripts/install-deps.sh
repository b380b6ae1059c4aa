#!/usr/bin/env bash
# Installs what building and testing Loyal needs on Debian 12, and only what is
# missing, so that it is cheap to run before every build. Run as root, or as a
# user who may sudo.
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config clang libclang-rt-dev libtsan2 libmicrohttpd-dev
          libjansson-dev libsqlite3-dev libpq-dev libsodium-dev libcmocka-dev
          postgresql sqlite3 wrk)

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

missing=()
for p in "${packages[@]}"; do
    installed "$p" || missing+=("$p")
done
# Any node will do (Node 20 or newer); take Debian's only when there is none.
if ! command -v node >/dev/null 2>&1 && ! installed nodejs; then
    missing+=(nodejs)
fi
# The system tests start throwaway servers with initdb, which lives in the
# versioned server package that "postgresql" depends on: when the metapackage
# is there but that package is gone, install the one it names.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && installed postgresql; then
    server=$(dpkg-query -W -f='${Depends}' postgresql | tr ',' '\n' | grep -o 'postgresql-[0-9]\+' | head -n1)
    missing+=("${server:-postgresql-15}")
fi

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all dependencies already present"
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "install-deps: missing ${missing[*]}; run as root or install sudo" >&2
        exit 1
    }
    sudo=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    echo "install-deps: installed ${missing[*]}, but no /usr/lib/postgresql/*/bin/initdb" >&2
    exit 1
fi
echo "install-deps: installed ${missing[*]}"
