#!/usr/bin/env bash
# Builds buzon's Debian package with cargo-deb and prints the .deb's path.
#
#   bash tests/harness/deb-build.sh release [OUT_DIR]   # what to ship: a release build
#   bash tests/harness/deb-build.sh test [OUT_DIR]      # the test build's binary, packaged
#
# `test` packages $CARGO_TARGET_DIR/debug/buzon (built by `cargo test`/`cargo
# build`) through the `deb-test` profile with `cargo deb --no-build`: the
# package's layout, scripts and unit are what ships, without a release build
# (minutes on a small CI machine). Both write the man pages and completions
# (`buzon generate`) beside the binary first, where the assets point.
# Installs cargo-deb (`cargo install --locked`) when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
mode=${1:-release}
out=${2:-${CARGO_TARGET_DIR:-target}/debian}
target=${CARGO_TARGET_DIR:-target}

if ! cargo deb --version >/dev/null 2>&1; then
  echo "==> installing cargo-deb (cargo install cargo-deb --locked)" >&2
  cargo install cargo-deb --locked --version '^3.8' >&2
fi

case $mode in
  release)
    cargo build --release --locked >&2
    profile=release
    ;;
  test)
    [ -x "$target/debug/buzon" ] || cargo build --locked >&2
    profile=deb-test
    mkdir -p "$target/deb-test"
    cp "$target/debug/buzon" "$target/deb-test/buzon"
    ;;
  *) echo "usage: $0 release|test [OUT_DIR]" >&2; exit 2 ;;
esac

bin=$target/$profile/buzon
rm -rf "$target/$profile/generated"
"$bin" generate man "$target/$profile/generated/man" >&2
# cargo-deb compresses man pages it copies, but not files beside the binary.
gzip -9n "$target/$profile/generated/man"/*.1
"$bin" generate completions "$target/$profile/generated/completions" >&2
mkdir -p "$out"
cargo deb --locked --no-build --profile "$profile" --fast --output "$out" >&2
ls -t "$out"/buzon_*.deb | head -1
