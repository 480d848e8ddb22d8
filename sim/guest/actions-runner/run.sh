#!/bin/sh
# Fake actions runner run.sh with run-helper.sh folded in (actions/runner 2.336.0):
# runs the listener, maps its return code, restarts it only on 2, else exits 0.
# INT/TERM/HUP are forwarded to the listener, which deletes its session and exits.
# Nothing is printed while the listener runs: if the SSH client that started us
# is gone, a write raises SIGPIPE and kills this shell, which may only happen
# once the listener has exited (as with the real run.sh, a restart on rc 2 then
# dies with it).
DIR=$(cd "$(dirname "$0")" && pwd)

if [ "$USER" = "root" ] && [ -z "$RUNNER_ALLOW_RUNASROOT" ]; then
  echo "Must not run interactively with sudo" >&2
  exit 1
fi

child=""
forward() {
  [ -n "$child" ] && kill "-$1" "$child" 2>/dev/null
}
trap 'forward TERM' TERM
trap 'forward INT' INT
trap 'forward HUP' HUP

while :; do
  node "$DIR/bin/Runner.Listener.mjs" run "$@" &
  child=$!
  wait "$child"
  rc=$?
  # A trapped signal interrupts wait (rc > 128) while the listener still runs:
  # wait again for its own status. A listener killed by a signal keeps 128+N.
  while [ "$rc" -gt 128 ] && kill -0 "$child" 2>/dev/null; do
    wait "$child"
    rc=$?
  done
  child=""

  case "$rc" in
    0) echo "Runner listener exit with 0 return code, stop the service, no retry needed."; helper=0 ;;
    1) echo "Runner listener exit with terminated error, stop the service, no retry needed."; helper=0 ;;
    2) echo "Runner listener exit with retryable error, re-launch runner in 5 seconds."; sleep 5; helper=2 ;;
    3 | 4) echo "Runner listener exit because of updating, re-launch runner after successful update"; helper=2 ;;
    5) echo "Runner listener exit with Session Conflict error, stop the service, no retry needed."; helper=0 ;;
    7)
      if [ -n "$ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE" ]; then helper=7; else helper=0; fi
      echo "Runner listener exit with deprecated version, stop the service, no retry needed."
      ;;
    *) echo "Exiting with unknown error code: $rc"; helper=0 ;;
  esac

  if [ "$helper" -eq 2 ]; then
    echo "Restarting runner..."
    continue
  fi
  echo "Exiting runner..."
  exit "$helper"
done
