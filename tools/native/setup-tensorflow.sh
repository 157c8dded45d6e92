#!/usr/bin/env bash
# npm run setup:tensorflow — makes the native `tensorflow` backend (@tensorflow/tfjs-node) available in this
# checkout without the internet beyond the package registries.
#
# tfjs-node's own install script downloads a prebuilt addon and libtensorflow, which cannot be reached here. This
# script instead:
#   1. installs @tensorflow/tfjs-node (pinned) with its dependencies into $PIX2PIX_ZERO_NATIVE_DIR (default
#      <checkout>/.native), without running its install script, then removes the tfjs packages the project itself
#      provides at the same version, so Node resolves them to the project's copies: one @tensorflow/tfjs-core;
#   2. takes libtensorflow and its C headers from the pinned PyPI wheel tensorflow-cpu (sha256 verified; the wheel
#      is cached in ${XDG_CACHE_HOME:-~/.cache}/pix2pix-zero/wheels, so a re-run does not fetch it again);
#   3. builds the N-API addon from the sources in the npm package against the local Node headers (npm's bundled
#      node-gyp, --nodedir: nothing downloaded);
#   4. builds stderr_guard.node (tools/native/stderr-guard.c), which lib/backend.ts uses to keep TensorFlow's
#      start-up notices off stderr;
#   5. loads it and prints the backend and libtensorflow versions.
# package.json, package-lock.json and node_modules/ are not touched, so `npm ci` does not undo it. The library finds
# the build there (lib/backend.ts); an ordinary `npm install @tensorflow/tfjs-node` is picked first when present.
# Idempotent: a second run checks the stamp and the smoke test and changes nothing. `--force` rebuilds.
set -euo pipefail

TFJS_NODE_VERSION=4.22.0
TF_VERSION=2.21.0
TF_WHEEL=tensorflow_cpu-${TF_VERSION}-cp311-cp311-manylinux_2_27_x86_64.whl
TF_WHEEL_SHA256=2b847d217b02ee7731ed91431daf3250daa0196c3c94614d23be27232e6e5b6c
# The tfjs packages the project depends on itself (package.json), which must not be installed twice.
SHARED_TFJS=(tfjs-core tfjs-backend-cpu tfjs-layers)

root=$(cd "$(dirname "$0")/../.." && pwd)
native=${PIX2PIX_ZERO_NATIVE_DIR:-$root/.native}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/pix2pix-zero/wheels
pkg=$native/node_modules/@tensorflow/tfjs-node
stamp=$native/STAMP
force=0
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup:tensorflow: unknown option '$a' (expected --force or --help)" >&2; exit 2 ;;
  esac
done

say() { printf 'setup:tensorflow: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
t0=$(date +%s)

# --- prerequisites --------------------------------------------------------------------------------------------
[[ $(uname -s) == Linux && $(uname -m) == x86_64 ]] ||
  die "the pinned wheel ($TF_WHEEL) is for Linux x86-64; this is $(uname -s) $(uname -m). Install @tensorflow/tfjs-node the ordinary way (npm install @tensorflow/tfjs-node@$TFJS_NODE_VERSION) where its download works."
missing=()
command -v python3 >/dev/null || missing+=("python3 (apt-get install python3 python3-pip)")
command -v python3 >/dev/null && ! python3 -m pip --version >/dev/null 2>&1 && missing+=("pip for python3 (apt-get install python3-pip)")
command -v unzip >/dev/null || missing+=("unzip (apt-get install unzip)")
command -v g++ >/dev/null || missing+=("a C++ compiler (apt-get install g++)")
command -v gcc >/dev/null || missing+=("a C compiler (apt-get install gcc)")
command -v make >/dev/null || missing+=("make (apt-get install make)")
command -v sha256sum >/dev/null || missing+=("sha256sum (apt-get install coreutils)")
node_bin=$(command -v node) || missing+=("node (Node.js >= 20.19)")
nodedir=""
if [[ -n ${node_bin:-} ]]; then
  nodedir=$(cd "$(dirname "$(readlink -f "$node_bin")")/.." && pwd)
  [[ -f $nodedir/include/node/node_api.h ]] ||
    missing+=("Node's C headers ($nodedir/include/node/node_api.h; Debian: apt-get install libnode-dev, or a Node.js tarball, which ships them)")
fi
gyp=""
if npm_bin=$(command -v npm); then
  for cand in "$(dirname "$(readlink -f "$npm_bin")")/../node_modules/node-gyp/bin/node-gyp.js" \
              "$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js"; do
    [[ -f $cand ]] && { gyp=$cand; break; }
  done
  [[ -z $gyp ]] && command -v node-gyp >/dev/null && gyp=$(command -v node-gyp)
  [[ -z $gyp ]] && missing+=("node-gyp (npm ships one; else npm install -g node-gyp)")
else
  missing+=("npm")
fi
if ((${#missing[@]} > 0)); then
  say "missing prerequisites:"
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi

# --- already set up? ------------------------------------------------------------------------------------------
want="tfjs-node=$TFJS_NODE_VERSION tensorflow=$TF_VERSION wheel=$TF_WHEEL_SHA256 guard=$(sha256sum "$root/tools/native/stderr-guard.c" | cut -c1-16)"
smoke() {
  # Loads the addon the way the library does (lib/backend.ts reads the same folder), with TensorFlow's start-up
  # log lines off; prints "<backend> <libtensorflow version>".
  TF_CPP_MIN_LOG_LEVEL=3 node -e '
    const guard = require(process.argv[2]);
    guard.mute();
    let tf;
    try {
      tf = require(process.argv[1]);
      tf.tidy(() => tf.add(tf.ones([1]), 1).dataSync());
    } finally {
      guard.unmute();
    }
    const cores = Object.keys(require.cache).filter((f) => f.endsWith("/tfjs-core/dist/tf-core.node.js"));
    if (cores.length !== 1) throw new Error("expected one @tensorflow/tfjs-core, found: " + cores.join(", "));
    const x = tf.tensor([1, 2, 3, 4], [2, 2]);
    const y = tf.matMul(x, x).dataSync();
    if (y[0] !== 7 || y[3] !== 22) throw new Error("wrong matMul result " + Array.from(y));
    console.log(tf.getBackend(), tf.backend().binding.TF_Version, "(tfjs-node " + tf.version["tfjs-node"] + ")");
  ' "$pkg" "$native/stderr_guard.node"
}
if ((force == 0)) && [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  if out=$(smoke 2>&1); then
    say "already set up in $native: $out ($(($(date +%s) - t0)) s)"
    exit 0
  fi
  say "the existing build in $native does not load ($out); rebuilding"
fi

# --- 1. the npm packages, without the download script ---------------------------------------------------------
for p in "${SHARED_TFJS[@]}"; do
  v=$(node -p "require('$root/node_modules/@tensorflow/$p/package.json').version" 2>/dev/null) ||
    die "node_modules/@tensorflow/$p is missing: run npm ci first"
  [[ $v == "$TFJS_NODE_VERSION" ]] || die "node_modules/@tensorflow/$p is $v; tfjs-node $TFJS_NODE_VERSION needs $TFJS_NODE_VERSION"
done
rm -f "$stamp"
mkdir -p "$native"
cat >"$native/package.json" <<EOF
{
  "name": "pix2pix-zero-native-backend",
  "private": true,
  "description": "The tensorflow backend for pix2pix-zero, built by npm run setup:tensorflow. Safe to delete.",
  "dependencies": { "@tensorflow/tfjs-node": "$TFJS_NODE_VERSION" }
}
EOF
say "installing @tensorflow/tfjs-node@$TFJS_NODE_VERSION into $native (install scripts off)"
(cd "$native" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error --omit=dev >/dev/null)
for p in "${SHARED_TFJS[@]}"; do rm -rf "$native/node_modules/@tensorflow/$p"; done

# --- 2. libtensorflow and headers from the wheel --------------------------------------------------------------
mkdir -p "$cache"
wheel=$cache/$TF_WHEEL
if [[ ! -f $wheel ]] || ! echo "$TF_WHEEL_SHA256  $wheel" | sha256sum --check --status; then
  rm -f "$wheel"
  say "downloading $TF_WHEEL from PyPI (pip download, $((273829956 / 1000000)) MB)"
  tmp=$(mktemp -d "$cache/.download-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
    --platform manylinux_2_27_x86_64 --dest "$tmp" "tensorflow-cpu==$TF_VERSION" ||
    die "pip could not download tensorflow-cpu==$TF_VERSION (is PyPI reachable?)"
  [[ -f $tmp/$TF_WHEEL ]] || die "pip did not produce $TF_WHEEL (got: $(ls "$tmp"))"
  echo "$TF_WHEEL_SHA256  $tmp/$TF_WHEEL" | sha256sum --check --status ||
    die "$TF_WHEEL: sha256 $(sha256sum "$tmp/$TF_WHEEL" | cut -d' ' -f1) is not the pinned $TF_WHEEL_SHA256"
  mv "$tmp/$TF_WHEEL" "$wheel"
else
  say "using the cached wheel $wheel (sha256 verified)"
fi
deps=$pkg/deps
rm -rf "$deps"
mkdir -p "$deps/lib" "$deps/include"
say "extracting libtensorflow and its headers"
unzip -q -o -j "$wheel" tensorflow/libtensorflow_cc.so.2 tensorflow/libtensorflow_framework.so.2 -d "$deps/lib"
strip --strip-unneeded "$deps/lib/"*.so.2 2>/dev/null || true # 816 MB -> 607 MB; the symbols stay exported
ln -sf libtensorflow_cc.so.2 "$deps/lib/libtensorflow.so"
ln -sf libtensorflow_framework.so.2 "$deps/lib/libtensorflow_framework.so"
# The file tfjs-node's install script looks for: with it, a later `npm rebuild` keeps deps/.
ln -sf libtensorflow_cc.so.2 "$deps/lib/libtensorflow.so.2.9.1"
hdr=$(mktemp -d "$native/.headers-XXXXXX")
unzip -q -o "$wheel" 'tensorflow/include/tensorflow/c/*' 'tensorflow/include/tensorflow/core/platform/ctstring*' \
  'tensorflow/include/tsl/platform/ctstring*' 'tensorflow/include/xla/tsl/c/*' -d "$hdr"
cp -r "$hdr/tensorflow/include/." "$deps/include/"
rm -rf "$hdr"

# --- 3. the addon ---------------------------------------------------------------------------------------------
say "building the N-API addon with node-gyp (headers from $nodedir/include/node)"
log=$native/build.log
if ! (cd "$pkg" && node "$gyp" rebuild --nodedir="$nodedir" --napi_build_version=8 --module_name=tfjs_binding \
  --module_path="$pkg/lib/napi-v8" --jobs="$(nproc)") >"$log" 2>&1; then
  tail -n 20 "$log" >&2
  die "the addon did not build; the whole log is in $log"
fi
rm -rf "$pkg/build"

# --- 4. the stderr guard --------------------------------------------------------------------------------------
gcc -O2 -shared -fPIC -DNAPI_VERSION=8 -I"$nodedir/include/node" "$root/tools/native/stderr-guard.c" -o "$native/stderr_guard.node" ||
  die "stderr_guard.node did not build"

# --- 5. smoke test --------------------------------------------------------------------------------------------
out=$(smoke 2>&1) || die "the addon built but does not load: $out"
echo "$want" >"$stamp"
size=$(du -sh "$native" | cut -f1)
say "ready: $out; $size in $native ($(($(date +%s) - t0)) s)"
