#!/bin/bash
# In the guest: the tart guest agent (Homebrew), started by launchd in the
# auto-login session with --run-agent (files/org.cirruslabs.tart-guest-agent.plist,
# uploaded to /tmp by Packer), so that the hosts reach the guest with
# `tart exec` (vm.transport: exec, docs/transport.md).
set -euo pipefail
label=org.cirruslabs.tart-guest-agent
plist="/Library/LaunchAgents/${label}.plist"
export HOMEBREW_NO_AUTO_UPDATE=1 HOMEBREW_NO_INSTALL_CLEANUP=1 HOMEBREW_NO_ANALYTICS=1
eval "$(/opt/homebrew/bin/brew shellenv)"

brew install cirruslabs/cli/tart-guest-agent
test -x /opt/homebrew/bin/tart-guest-agent
sudo install -o root -g wheel -m 0644 "/tmp/${label}.plist" "$plist"
plutil -lint "$plist"
