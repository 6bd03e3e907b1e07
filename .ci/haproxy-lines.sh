#!/usr/bin/env bash
# HAProxy 3.2 (Debian unstable) and 3.4 (Debian experimental), unpacked from Debian's own binary
# packages into a private, git-ignored folder, for the tests that run real HAProxy on every line.
#
#   .ci/haproxy-lines.sh [fetch]   fetch or reuse every line, print one "<line> <bin>" per line
#   .ci/haproxy-lines.sh docs      also unpack haproxy-doc (HTML) of each line; the text docs
#                                  (SPOE.txt.gz, configuration.txt.gz) come with the line itself
#                                  in <line>/root/usr/share/doc/haproxy/
#   .ci/haproxy-lines.sh list      print what the cache holds, fetch nothing
#   (npm run haproxy:lines is the first one)
#
# These packages do not install on Debian 12 (newer libc and OpenSSL), and nothing is installed:
# each package (haproxy and the library packages it needs, read from their Depends) is downloaded
# with `apt-get download` and unpacked with `dpkg -x` into one folder, and <line>/bin/haproxy is a
# wrapper that starts the real binary through that folder's own ld-linux-x86-64.so.2 with
# --library-path. The machine's apt setup is left alone: apt runs with a private sources list
# (the URIs and keys of the system's own Debian entry, other suites), private state and cache
# folders and an empty dpkg status, all passed with -o.
#
# Cache: $HAPROXY_LINES_DIR (default <repo>/.cache/haproxy-lines), one folder per line keyed by
# the versions of every package in it (<line>-<haproxy version>-<hash of all versions>), and a
# symlink <line> -> the current one. Unchanged versions are reused; a change fetches a new folder.
# Without network, an existing folder is reused as it is.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${HAPROXY_LINES_DIR:-$repo/.cache/haproxy-lines}
# line  suite  (the package of that suite is the line's newest build)
lines=("3.2 unstable" "3.4 experimental")
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)

say() { echo "haproxy-lines: [$(date -u +%H:%M:%S)] $*" >&2; }
die() {
  say "$*"
  exit 1
}

# The system's own Debian archive entry: URIs and Signed-By of the source whose suites name the
# system's codename (not -security/-updates). deb822 (*.sources) and one-line (*.list) formats.
system_debian_source() {
  local codename uri="" signed=""
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || die "no VERSION_CODENAME in /etc/os-release"
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # Paragraphs separated by blank lines; take the first whose Suites has the bare codename.
    read -r uri signed < <(awk -v cn="$codename" '
      BEGIN { RS = ""; FS = "\n" }
      {
        u = ""; s = ""; su = 0; en = 1
        for (i = 1; i <= NF; i++) {
          line = $i
          if (line ~ /^#/) continue
          if (line ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", line); split(line, a, /[ \t]+/); u = a[1] }
          if (line ~ /^Suites:/) { n = split(line, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == cn) su = 1 }
          if (line ~ /^Signed-By:/) { sub(/^Signed-By:[ \t]*/, "", line); s = line }
          if (line ~ /^Enabled:[ \t]*no/) en = 0
        }
        if (u != "" && su && en) { print u, s; exit }
      }' "$f") || true
    [ -z "$uri" ] || break
  done
  if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      read -r uri signed < <(awk -v cn="$codename" '
        $1 == "deb" {
          i = 2; s = ""
          if ($2 ~ /^\[/) { for (; i <= NF && $i !~ /\]$/; i++) if ($i ~ /signed-by=/) s = $i; if ($i ~ /signed-by=/) s = $i; i++ }
          sub(/.*signed-by=/, "", s); sub(/\]$/, "", s)
          if ($(i + 1) == cn) { print $i, s; exit }
        }' "$f") || true
      [ -z "$uri" ] || break
    done
  fi
  [ -n "$uri" ] || die "no Debian entry for suite '$codename' in /etc/apt/sources.list{,.d}"
  echo "$uri ${signed:-}"
}

apt_dir=$cache/apt
apt_opts=()
setup_apt() {
  local uri signed
  read -r uri signed < <(system_debian_source)
  mkdir -p "$apt_dir"/{lists/partial,archives/partial,etc}
  : >"$apt_dir/status"
  {
    echo "Types: deb"
    echo "URIs: $uri"
    echo "Suites: unstable experimental"
    echo "Components: main"
    echo "Architectures: $arch"
    [ -z "$signed" ] || echo "Signed-By: $signed"
  } >"$apt_dir/etc/sources.sources"
  apt_opts=(
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$apt_dir/etc"
    -o "Dir::Etc::Preferences=/dev/null"
    -o "Dir::Etc::PreferencesParts=$apt_dir/etc"
    -o "Dir::State=$apt_dir"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir"
    -o "Dir::Cache::Archives=$apt_dir/archives"
    -o "Acquire::Languages=none"
    -o "APT::Sandbox::User=root"
    -o "Debug::NoLocking=true"
    -o "APT::Architecture=$arch"
    -o "APT::Architectures=$arch"
  )
}

# haproxy=<version> of every line's suite and name=version of every library package they need
# (Depends and Pre-Depends followed through library packages only: lib*, zlib1g; the first of
# alternatives). Libraries are the candidates of the index (unstable), shared by all lines.
closure() {
  local -A seen=()
  local level=() next out=() name ver dep entry
  for entry in "${lines[@]}"; do level+=("haproxy/${entry#* }"); done
  # Breadth first, one apt-cache call per level (each call reads the whole index).
  while [ "${#level[@]}" -gt 0 ]; do
    next=()
    while read -r name ver deps; do
      out+=("$name=$ver")
      for dep in ${deps//,/ }; do
        case $dep in
          lib* | zlib1g) [ -n "${seen[$dep]:-}" ] || { seen[$dep]=1 && next+=("$dep"); } ;;
        esac
      done
    done < <(apt-cache "${apt_opts[@]}" show --no-all-versions "${level[@]}" 2>/dev/null | awk '
      function flush() { if (p != "") print p, v, d; p = ""; v = ""; d = "" }
      /^Package:/ { flush(); p = $2 }
      /^Version:/ { v = $2 }
      /^(Pre-)?Depends:/ {
        sub(/^[^:]*:/, ""); n = split($0, x, ",")
        # the first of alternatives, without version or arch qualifiers
        for (i = 1; i <= n; i++) { y = x[i]; sub(/\|.*/, "", y); gsub(/\(.*\)|:any/, "", y); gsub(/[ \t]/, "", y); d = d "," y }
      }
      END { flush() }')
    for name in "${level[@]}"; do seen[${name%%/*}]=1; done
    level=("${next[@]}")
  done
  printf '%s\n' "${out[@]}" | sort -u
}

write_wrapper() {
  local dir=$1
  mkdir -p "$dir/bin"
  cat >"$dir/bin/haproxy" <<EOF
#!/bin/sh
# Debian's haproxy with its own libraries (written by .ci/haproxy-lines.sh).
root=\$(cd "\$(dirname "\$0")/../root" && pwd)
lib=\$root/usr/lib/$multiarch
# --argv0: HAProxy re-executes argv[0] on a master-worker reload; it must be this wrapper.
exec "\$lib/ld-linux-x86-64.so.2" --library-path "\$lib:\$root/lib/$multiarch" --argv0 "\$0" "\$root/usr/sbin/haproxy" "\$@"
EOF
  chmod +x "$dir/bin/haproxy"
}

all_pkgs=""
# The closure only changes with the index: remember it per index state (apt-cache is slow).
compute_closure() {
  local lists memo
  lists=$(stat -c '%n %s %Y' "$apt_dir"/lists/*Packages* 2>/dev/null | sha256sum | cut -c1-12)
  memo="$apt_dir/closure-$lists.txt"
  if [ ! -s "$memo" ]; then
    rm -f "$apt_dir/closure-"*
    closure >"$memo.tmp"
    mv "$memo.tmp" "$memo"
  fi
  all_pkgs=$(cat "$memo")
}

fetch_line() {
  local line=$1 suite=$2 pkgs key dir tmp v
  v=$(apt-cache "${apt_opts[@]}" show --no-all-versions "haproxy/$suite" 2>/dev/null | awk '/^Version:/ { print $2; exit }')
  [ -n "$v" ] || die "haproxy/$suite not found in the private index"
  pkgs=$( (echo "haproxy=$v" && grep -v '^haproxy=' <<<"$all_pkgs") | sort)
  key=$(sha256sum <<<"$pkgs" | cut -c1-12)
  dir="$cache/$line-${v//[:~+]/_}-$key"
  if [ -x "$dir/bin/haproxy" ] && "$dir/bin/haproxy" -v >/dev/null 2>&1; then
    say "$line: reusing $(basename "$dir")"
  else
    say "$line: fetching haproxy $v and $(($(wc -l <<<"$pkgs") - 1)) library packages ($suite)"
    # One download folder for all lines: a package both lines use (libc6 ...) comes once.
    local debs=$apt_dir/debs want=() p
    mkdir -p "$debs"
    for p in $pkgs; do
      compgen -G "$debs/${p%%=*}_$(sed 's/:/%3a/' <<<"${p#*=}")_*.deb" >/dev/null || want+=("$p")
    done
    [ "${#want[@]}" = 0 ] || (cd "$debs" && apt-get "${apt_opts[@]}" -q download "${want[@]}" >/dev/null) ||
      die "$line: apt-get download failed"
    say "$line: unpacking"
    tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
    mkdir -p "$tmp/line/root"
    for p in $pkgs; do
      dpkg -x "$(compgen -G "$debs/${p%%=*}_$(sed 's/:/%3a/' <<<"${p#*=}")_*.deb" | head -1)" "$tmp/line/root"
    done
    echo "$pkgs" >"$tmp/line/packages.txt"
    write_wrapper "$tmp/line"
    "$tmp/line/bin/haproxy" -v >/dev/null || die "$line: unpacked haproxy does not run"
    rm -rf "$dir"
    mv "$tmp/line" "$dir"
    rm -rf "$tmp"
  fi
  ln -sfn "$(basename "$dir")" "$cache/$line"
  # Older keyed folders of this line are no longer pointed at.
  for old in "$cache/$line"-*; do
    [ "$old" = "$dir" ] || rm -rf "$old"
  done
}

fetch_docs() {
  local line=$1 suite=$2 tmp
  [ -f "$cache/doc/$line/usr/share/doc/haproxy/SPOE.txt" ] ||
    [ -f "$cache/doc/$line/usr/share/doc/haproxy/SPOE.txt.gz" ] && {
    say "$line: docs already in $cache/doc/$line"
    return
  }
  tmp=$(mktemp -d "$cache/.fetch-XXXXXX")
  (cd "$tmp" && apt-get "${apt_opts[@]}" -q download "haproxy-doc/$suite" >/dev/null) ||
    die "$line: haproxy-doc download failed"
  rm -rf "$cache/doc/$line"
  mkdir -p "$cache/doc/$line"
  dpkg -x "$tmp"/haproxy-doc_*.deb "$cache/doc/$line"
  rm -rf "$tmp"
  say "$line: docs in $cache/doc/$line/usr/share/doc/haproxy"
}

list() {
  local entry
  for entry in "${lines[@]}"; do
    set -- $entry
    if [ -x "$cache/$1/bin/haproxy" ]; then echo "$1 $cache/$1/bin/haproxy"; else say "$1: not fetched"; fi
  done
}

cmd=${1:-fetch}
case $cmd in
  list)
    list
    exit 0
    ;;
  fetch | docs) ;;
  *) die "usage: $0 [fetch|docs|list]" ;;
esac

mkdir -p "$cache"
setup_apt
if ! apt-get "${apt_opts[@]}" -q update >"$apt_dir/update.log" 2>&1; then
  # No network: what the cache holds is still usable.
  all=1
  for entry in "${lines[@]}"; do
    set -- $entry
    [ -x "$cache/$1/bin/haproxy" ] || all=0
  done
  [ "$all" = 1 ] || die "apt-get update failed (see $apt_dir/update.log)"
  say "apt-get update failed; reusing the cache as it is"
  list
  exit 0
fi
say "resolving packages"
compute_closure
for entry in "${lines[@]}"; do
  set -- $entry
  fetch_line "$1" "$2"
  [ "$cmd" != docs ] || fetch_docs "$1" "$2"
done
list
