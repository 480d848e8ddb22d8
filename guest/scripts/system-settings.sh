#!/bin/bash
# In the guest, as the runner user: passwordless sudo, auto-login, and
# nothing that sleeps, locks, indexes or updates behind a job's back.
set -euo pipefail
: "${RUNNER_USER:?RUNNER_USER is required}" "${RUNNER_PASSWORD:?RUNNER_PASSWORD is required}"

sudoers="/etc/sudoers.d/${RUNNER_USER}-nopasswd"
printf '%s\n' "$RUNNER_PASSWORD" | sudo -S -p '' sh -c "printf '%s ALL=(ALL) NOPASSWD: ALL\n' '$RUNNER_USER' > '$sudoers' && chmod 0440 '$sudoers'"
sudo visudo -cf "$sudoers"

# Auto-login: loginwindow's user plus /etc/kcpassword (the password XORed
# with Apple's fixed key, zero-padded to a multiple of 12 bytes).
sudo defaults write /Library/Preferences/com.apple.loginwindow autoLoginUser "$RUNNER_USER"
perl -e '
  my @key = (0x7d, 0x89, 0x52, 0x23, 0xd2, 0xbc, 0xdd, 0xea, 0xa3, 0xb9, 0x1f);
  my @p = map { ord } split //, $ARGV[0];
  push @p, (0) x (12 - @p % 12);
  print map { chr($p[$_] ^ $key[$_ % @key]) } 0 .. $#p;
' "$RUNNER_PASSWORD" | sudo tee /etc/kcpassword >/dev/null
sudo chmod 0600 /etc/kcpassword

# No sleep, no screen saver, no screen lock.
sudo pmset -a sleep 0 displaysleep 0 disksleep 0 powernap 0 standby 0
defaults -currentHost write com.apple.screensaver idleTime -int 0
sysadminctl -screenLock off -password "$RUNNER_PASSWORD"

# No Spotlight indexing of build trees.
sudo mdutil -a -i off

# No automatic updates: the image changes only by a rebuild.
sudo softwareupdate --schedule off
for key in AutomaticCheckEnabled AutomaticDownload AutomaticallyInstallMacOSUpdates CriticalUpdateInstall ConfigDataInstall; do
  sudo defaults write /Library/Preferences/com.apple.SoftwareUpdate "$key" -bool false
done
sudo defaults write /Library/Preferences/com.apple.commerce AutoUpdate -bool false
