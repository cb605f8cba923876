#!/usr/bin/env bash
# Builds the images the test cluster runs, as OCI archives for `ctr images import` (no registry is
# reachable here). Root filesystems are made from this machine's Debian packages (their files plus
# the shared libraries their ELF files need), never from a pulled base image:
#   pause     registry.k8s.io/pause:3.10                       the sandbox (a 10-line Go program)
#   agnhost   registry.k8s.io/e2e-test-images/agnhost:2.53     what e2e v1.32 expects; bash as /bin/sh,
#                                                              OpenBSD nc, curl, iproute2 (as upstream's)
#   busybox   registry.k8s.io/e2e-test-images/busybox:1.36.1-1 Debian's busybox-static
#   agent     kube-router-deno:<version>                       the bundle + Deno + the kernel tools
# Usage: images.sh CLUSTER_BIN_DIR OUT_DIR   (prints nothing; OUT_DIR/*.tar)
set -euo pipefail
bin=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
deno=${DENO:-$repo/tools/deno/node_modules/.bin/deno}
mkdir -p "$out"
work=$(mktemp -d /tmp/kr-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Copies one file (or symlink, with what it points to) from this machine into ROOT at the same path.
add_file() {
  local root=$1 f=$2
  [ -e "$f" ] || [ -L "$f" ] || return 0
  cp -a --parents "$f" "$root/" 2>/dev/null || true
  if [ -L "$f" ]; then
    local t; t=$(readlink -f "$f")
    [ -n "$t" ] && [ -e "$t" ] && [ ! -e "$root$t" ] && add_file "$root" "$t"
  fi
  return 0
}
# The files of Debian packages (not docs), then every shared library their ELF files load.
add_pkgs() {
  local root=$1; shift
  local p f
  for p in "$@"; do
    dpkg-query -W "$p" >/dev/null 2>&1 || { echo "images.sh: Debian package $p is not installed" >&2; exit 1; }
    while read -r f; do
      case "$f" in /usr/share/doc/* | /usr/share/man/* | /usr/share/locale/* | /usr/share/lintian/* | /usr/share/bash-completion/*) continue ;; esac
      [ -d "$f" ] && [ ! -L "$f" ] && { mkdir -p "$root$f"; continue; }
      add_file "$root" "$f"
    done < <(dpkg -L "$p")
  done
}
add_libs() {
  local root=$1 f lib
  # Twice: libraries bring libraries.
  for _ in 1 2; do
    while read -r f; do
      file -b "$f" | grep -q '^ELF' || continue
      for lib in $(ldd "$f" 2>/dev/null | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do
        add_file "$root" "$lib"
      done
    done < <(find "$root" -type f \( -perm -u+x -o -name '*.so*' \))
  done
}
base_fs() {
  local root=$1
  # Debian's merged /usr: /bin, /sbin, /lib, /lib64 are links into /usr, as on the machine the
  # files come from (their symlinks, e.g. the dynamic loader's, assume it).
  mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,tmp,proc,sys,dev,run,var,root}
  ln -s usr/bin "$root/bin"; ln -s usr/sbin "$root/sbin"; ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"
  ln -s ../run "$root/var/run"
  chmod 1777 "$root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
}
busybox_applets() {
  local root=$1 a
  cp /bin/busybox "$root/bin/busybox"
  for a in $(/bin/busybox --list); do
    [ -e "$root/bin/$a" ] || [ -e "$root/usr/bin/$a" ] || [ -e "$root/sbin/$a" ] || [ -e "$root/usr/sbin/$a" ] ||
      ln -s busybox "$root/bin/$a"
  done
}
oci() { "$deno" run -A "$here/oci.ts" "$@"; }

# Each image is rebuilt only when missing; the agent's when its bundle or Deno changed.
# pause
[ -f "$out/pause.tar" ] || {
r=$work/pause; mkdir -p "$r"; cp "$bin/pause" "$r/pause"
oci "$r" registry.k8s.io/pause:3.10 "$out/pause.tar" '{"Entrypoint":["/pause"]}'
}

# CoreDNS (the cluster DNS; see coredns.yaml)
[ -f "$out/coredns.tar" ] || [ ! -x "$bin/coredns" ] || {
r=$work/coredns; base_fs "$r"; cp "$bin/coredns" "$r/coredns"
oci "$r" registry.k8s.io/coredns/coredns:v1.11.3 "$out/coredns.tar" '{"Entrypoint":["/coredns"]}'
}

# the Conntrack spec's "boom server" (upstream: registry.k8s.io/e2e-test-images/regression-issue-74839:1.2)
[ -f "$out/boom.tar" ] || [ ! -x "$bin/regression-issue-74839" ] || {
r=$work/boom; base_fs "$r"; cp "$bin/regression-issue-74839" "$r/regression-issue-74839"
oci "$r" registry.k8s.io/e2e-test-images/regression-issue-74839:1.2 "$out/boom.tar" '{"Entrypoint":["/regression-issue-74839"]}'
}

# busybox
[ -f "$out/busybox.tar" ] || {
r=$work/busybox; base_fs "$r"; busybox_applets "$r"
oci "$r" registry.k8s.io/e2e-test-images/busybox:1.36.1-1 "$out/busybox.tar" '{"Cmd":["sh"]}'
}

# agnhost: upstream's image has bash, OpenBSD nc, curl, iproute2, ping on top of its base; the e2e
# specs run `sh -c '... nc -v ...'`, so /bin/sh is bash (busybox ash would run its own nc).
[ -f "$out/agnhost.tar" ] || {
r=$work/agnhost; base_fs "$r"
add_pkgs "$r" bash netcat-openbsd curl iproute2 iputils-ping
add_libs "$r"
ln -sf bash "$r/bin/sh"
ln -sf /bin/nc.openbsd "$r/usr/bin/nc"
busybox_applets "$r"
cp "$bin/agnhost" "$r/agnhost"
oci "$r" registry.k8s.io/e2e-test-images/agnhost:2.53 "$out/agnhost.tar" '{"Entrypoint":["/agnhost"],"Cmd":["pause"]}'
}

# the agent: `deno task bundle` + the Deno binary + Debian's kernel tools, the same set
# manifests/Dockerfile installs, plus the CNI plugins its init container copies to the host.
version=$(sed -n 's/.*VERSION = "\([^"]*\)".*/\1/p' "$repo/cmd/version.ts" | head -1)
# (Bundling costs 20 s here: only when a source is newer than the bundle.)
if [ ! -f "$repo/dist/kube-router/main.js" ] || [ -n "$(find "$repo" \( -path "$repo/tools" -o -path "$repo/node_modules" -o -path "$repo/.git" \) -prune -o \
  \( -name '*.ts' -o -name 'deno.json' -o -name 'deno.lock' \) -newer "$repo/dist/kube-router/main.js" -print -quit)" ]; then
  (cd "$repo" && "$deno" task bundle >/dev/null 2>&1) || { echo "images.sh: deno task bundle failed" >&2; exit 1; }
fi
# (This script is part of the sum: a change to the recipe rebuilds the image.)
sum=$({ cat "$repo"/dist/kube-router/*.js "$here/images.sh"; stat -L -c '%s %Y' "$deno"; } | sha256sum | cut -c1-16)
[ -f "$out/agent.tar" ] && [ "$(cat "$out/agent.sum" 2>/dev/null)" = "$sum" ] && exit 0
r=$work/agent; base_fs "$r"
add_pkgs "$r" iproute2 iptables ipset nftables conntrack libxtables12 containernetworking-plugins
for a in /etc/alternatives/iptables* /etc/alternatives/ip6tables* /etc/alternatives/arptables* /etc/alternatives/ebtables*; do
  add_file "$r" "$a"
  # ... and the command name that points at it (not listed by dpkg: update-alternatives made it).
  for d in /usr/sbin /usr/bin; do [ -L "$d/$(basename "$a")" ] && add_file "$r" "$d/$(basename "$a")"; done
done
mkdir -p "$r/usr/bin" "$r/opt"
cp "$(readlink -f "$deno")" "$r/usr/bin/deno"
cp -r "$repo/dist/kube-router" "$r/opt/kube-router"
add_libs "$r"
busybox_applets "$r"
# Deno analyses a module's source the first time it runs it and keeps the result in DENO_DIR. Left
# to container start (an empty DENO_DIR every time), that parse leaves the agent ~75 MB more
# resident for its whole life (154 vs 77 MB on the example cluster); done here, once, it costs nothing.
mkdir -p "$r/var/cache/deno"
DENO_DIR=/var/cache/deno DENO_NO_UPDATE_CHECK=1 chroot "$r" /usr/bin/deno cache /opt/kube-router/main.js ||
  { echo "images.sh: deno cache in the agent's root failed" >&2; exit 1; }
oci "$r" "docker.io/library/kube-router-deno:$version" "$out/agent.tar" \
  '{"Entrypoint":["/usr/bin/deno","run","-A","--no-prompt","--no-config","--no-code-cache","--v8-flags=--max-semi-space-size=1,--expose-gc","/opt/kube-router/main.js"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","DENO_DIR=/var/cache/deno","DENO_NO_UPDATE_CHECK=1"]}'
echo "$version" >"$out/agent.version"
echo "$sum" >"$out/agent.sum"
