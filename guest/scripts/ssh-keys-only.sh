#!/bin/bash
# In the guest, last: the hosts' public keys authorised for the runner user,
# and sshd with public-key authentication only.
set -euo pipefail
: "${RUNNER_USER:?RUNNER_USER is required}" "${AUTHORIZED_KEYS:?AUTHORIZED_KEYS is required: the public key lines of the hosts}"

home=$(dscl . -read "/Users/$RUNNER_USER" NFSHomeDirectory | awk '{print $2}')
sudo -u "$RUNNER_USER" mkdir -p "$home/.ssh"
printf '%s\n' "$AUTHORIZED_KEYS" | sudo -u "$RUNNER_USER" tee "$home/.ssh/authorized_keys" >/dev/null
sudo chmod 0700 "$home/.ssh"
sudo chmod 0600 "$home/.ssh/authorized_keys"
ssh-keygen -lf "$home/.ssh/authorized_keys"

sudo mkdir -p /etc/ssh/sshd_config.d
printf '%s\n' \
  "PasswordAuthentication no" \
  "KbdInteractiveAuthentication no" \
  "PermitRootLogin no" \
  "PubkeyAuthentication yes" | sudo tee /etc/ssh/sshd_config.d/100-macos-runner.conf >/dev/null
sudo sshd -t
sudo systemsetup -setremotelogin on
