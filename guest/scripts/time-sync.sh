#!/bin/bash
# In the guest: the launchd daemon that steps the clock at every boot
# (files/dev.macos-runner.time-sync.plist, uploaded to /tmp by Packer).
set -euo pipefail
label=dev.macos-runner.time-sync
plist="/Library/LaunchDaemons/${label}.plist"

sudo install -o root -g wheel -m 0644 "/tmp/${label}.plist" "$plist"
plutil -lint "$plist"
sudo systemsetup -setusingnetworktime on
sudo launchctl bootstrap system "$plist"
sudo sntp -sS time.apple.com
