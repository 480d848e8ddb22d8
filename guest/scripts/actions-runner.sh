#!/bin/bash
# In the guest, as the runner user: the actions runner at a pinned version,
# its download checked against a pinned sha256, unpacked unconfigured into
# ~/actions-runner. The product runs ~/actions-runner/run.sh over SSH with
# the JIT config in ACTIONS_RUNNER_INPUT_JITCONFIG on stdin.
set -euo pipefail
: "${RUNNER_VERSION:?RUNNER_VERSION is required}" "${RUNNER_SHA256:?RUNNER_SHA256 is required}" "${IMAGE_OS:?IMAGE_OS is required}"

archive="actions-runner-osx-arm64-${RUNNER_VERSION}.tar.gz"
url="https://github.com/actions/runner/releases/download/v${RUNNER_VERSION}/${archive}"
dir="$HOME/actions-runner"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

curl -fsSL --retry 3 -o "$work/$archive" "$url"
echo "${RUNNER_SHA256}  $work/$archive" | shasum -a 256 -c -

rm -rf "$dir"
mkdir -p "$dir"
tar -xzf "$work/$archive" -C "$dir"
for f in .runner .credentials .credentials_rsaparams; do
  [ ! -e "$dir/$f" ] || { echo "actions-runner: $dir/$f exists; the image must hold an unconfigured runner" >&2; exit 1; }
done

# The environment every job starts with (the runner reads .env and .path at start).
path="/opt/homebrew/bin:/opt/homebrew/sbin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
printf 'ImageOS=%s\nLANG=en_US.UTF-8\nPATH=%s\n' "$IMAGE_OS" "$path" > "$dir/.env"
printf '%s\n' "$path" > "$dir/.path"

installed=$("$dir/bin/Runner.Listener" --version)
[ "$installed" = "$RUNNER_VERSION" ] || { echo "actions-runner: installed $installed, expected $RUNNER_VERSION" >&2; exit 1; }
echo "actions-runner $installed unpacked in $dir (unconfigured)"
