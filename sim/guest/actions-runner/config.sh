#!/bin/sh
# Fake actions runner config.sh (actions/runner 2.336.0): refuses root, then
# `Runner.Listener configure "$@"`, or `remove` when the first argument is remove.
DIR=$(cd "$(dirname "$0")" && pwd)

if [ "$USER" = "root" ] && [ -z "$RUNNER_ALLOW_RUNASROOT" ]; then
  echo "Must not run with sudo" >&2
  exit 1
fi

if [ "$1" = "remove" ]; then
  shift
  exec node "$DIR/bin/Runner.Listener.mjs" remove "$@"
fi
exec node "$DIR/bin/Runner.Listener.mjs" configure "$@"
