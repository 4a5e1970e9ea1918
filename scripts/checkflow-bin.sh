# The checkflow binary and the bench headers, for the scripts that need them
# (quickstart, benchmarks, examples). Source it from the repository root
# (each script cds there first), then:
#
#   build_checkflow    # cargo build --release (its progress shown); sets `bin` to the binary
#   find_checkflow     # `bin`: $CHECKFLOW if set, else `checkflow` on PATH,
#                      # else build_checkflow
#   machine_banner     # prints the machine, the disk of $CARGO_TARGET_DIR and the commit
#
# The build goes to $CARGO_TARGET_DIR, by default ~/.cache/checkflow/target
# (outside the clone, as scripts/test.sh uses it).

build_checkflow() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/checkflow/target}"
  if [ -x "$CARGO_TARGET_DIR/release/checkflow" ]; then
    echo "== building checkflow (release) in $CARGO_TARGET_DIR: only what changed"
  else
    echo "== building checkflow (release) in $CARGO_TARGET_DIR: a first build takes about"
    echo "   15 minutes on a 2-core machine, more while other builds run (cargo shows its progress)"
  fi
  cargo build --release --bin checkflow
  bin="$CARGO_TARGET_DIR/release/checkflow"
}

find_checkflow() {
  if [ -n "${CHECKFLOW:-}" ]; then
    bin="$CHECKFLOW"
  elif command -v checkflow >/dev/null 2>&1; then
    bin=checkflow
  else
    build_checkflow
  fi
}

machine_banner() {
  echo "== machine"
  echo "   $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
  echo "   work folder on: $(df -hT "$CARGO_TARGET_DIR" 2>/dev/null | awk 'NR==2 {print $1, $2}' || echo '?')"
  echo "   commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- crates src Cargo.toml 2>/dev/null || echo ' + uncommitted changes in crates/')"
}
