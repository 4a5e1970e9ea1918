#!/usr/bin/env bash
# Installs checkflow: builds it (release, as the quickstart does; nothing to
# do if that build is current) and copies the binary to ~/.local/bin, or to
# the folder given with --dir, then says whether that folder is on PATH.
#
#   ./scripts/install.sh                  # ~/.local/bin/checkflow
#   ./scripts/install.sh --dir /opt/bin   # /opt/bin/checkflow
#
# CHECKFLOW_BUILT=/path/to/checkflow installs that binary instead of building
# one (the end-to-end test of this script uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/checkflow-bin.sh

dest="$HOME/.local/bin"
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) [ $# -ge 2 ] || { echo "usage: $0 [--dir DIR]" >&2; exit 2; }; dest="$2"; shift 2 ;;
    *) echo "usage: $0 [--dir DIR]" >&2; exit 2 ;;
  esac
done

if [ -n "${CHECKFLOW_BUILT:-}" ]; then
  bin="$CHECKFLOW_BUILT"
else
  build_checkflow
fi

mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
# Copied under a temporary name, then renamed: a checkflow running from the
# folder keeps its file, and a cut copy never sits at the final name.
tmp="$dest/.checkflow.install.$$"
trap 'rm -f "$tmp"' EXIT
cp "$bin" "$tmp"
chmod 755 "$tmp"
mv -f "$tmp" "$dest/checkflow"
echo "== installed $dest/checkflow ($("$dest/checkflow" --version))"
case ":$PATH:" in
  *":$dest:"*) echo "   $dest is on your PATH: try \`checkflow --help\`" ;;
  *) echo "   $dest is not on your PATH: add it (e.g. echo 'export PATH=\"$dest:\$PATH\"' >> ~/.bashrc, then open a new shell), or run $dest/checkflow" ;;
esac
