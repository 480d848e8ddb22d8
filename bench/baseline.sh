#!/usr/bin/env bash
# The plain bash loop people write around tart, one VM per job: the baseline
# bench/run.ts measures `loop` against. Each cycle: a JIT config with curl,
# tart clone (and a random MAC), tart run in the background, tart ip and
# `ssh true` polled every second, the runner over ssh until its one job is
# done, tart stop, tart delete. SIGTERM (to its process group) ends it after
# removing its VM and runner.
#   baseline.sh SLOT
# Environment (bench/run.ts sets it): TART, IMAGE, TART_FLAGS (e.g.
# --insecure), API (GitHub's API URL), ORG, TOKEN_FILE (a 0600 file holding a
# PAT or an installation token), LABELS (a JSON array), NAME_PREFIX, SSH_USER,
# SSH_PORT, SSH_KEY, KNOWN_HOSTS.
set -uo pipefail

slot=${1:?usage: baseline.sh SLOT}
vm=""
runner_id=""

ssh_opts=(-p "$SSH_PORT" -i "$SSH_KEY" -o BatchMode=yes -o IdentitiesOnly=yes
  -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null
  -o HostKeyAlias=macos-runner-guest -o ConnectTimeout=5 -o LogLevel=ERROR)

# GitHub's API with the token from its file: the token goes to curl's stdin
# (printf is a builtin), never into an argv.
github() {
  local method=$1 path=$2
  shift 2
  printf 'header = "Authorization: Bearer %s"\n' "$(<"$TOKEN_FILE")" |
    curl -fsS --config - -X "$method" -H "Accept: application/vnd.github+json" "$API$path" "$@"
}

cleanup() {
  if [ -n "$vm" ]; then
    "$TART" stop "$vm" >/dev/null 2>&1
    wait
    "$TART" delete "$vm" >/dev/null 2>&1
  fi
  if [ -n "$runner_id" ]; then github DELETE "/orgs/$ORG/actions/runners/$runner_id" >/dev/null 2>&1; fi
}
trap 'cleanup; exit 0' TERM INT

n=0
while :; do
  n=$((n + 1))
  vm="$NAME_PREFIX-$slot-$$-$n"
  jit=$(github POST "/orgs/$ORG/actions/runners/generate-jitconfig" \
    -d "{\"name\":\"$vm\",\"runner_group_id\":1,\"labels\":$LABELS,\"work_folder\":\"_work\"}") || { sleep 5; continue; }
  runner_id=$(jq -r .runner.id <<<"$jit")
  config=$(jq -r .encoded_jit_config <<<"$jit")

  # shellcheck disable=SC2086 # TART_FLAGS is a list of flags
  "$TART" clone $TART_FLAGS "$IMAGE" "$vm"
  "$TART" set "$vm" --random-mac # every clone of an image has its MAC, and a stale lease would answer for it
  "$TART" run --no-graphics "$vm" >/dev/null 2>&1 &
  ip=$("$TART" ip --wait 120 "$vm")
  until ssh "${ssh_opts[@]}" "$SSH_USER@$ip" true 2>/dev/null; do sleep 1; done

  # The JIT config goes over stdin, as the runner reads it from its environment.
  printf '%s\n' "$config" | ssh "${ssh_opts[@]}" -T "$SSH_USER@$ip" \
    'IFS= read -r ACTIONS_RUNNER_INPUT_JITCONFIG && export ACTIONS_RUNNER_INPUT_JITCONFIG && cd "$HOME/actions-runner" && exec ./run.sh' >/dev/null
  runner_id="" # an ephemeral runner de-registers itself after its job

  "$TART" stop "$vm" >/dev/null
  wait
  "$TART" delete "$vm"
  vm=""
done
