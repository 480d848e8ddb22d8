#!/bin/bash
# In the guest: the Homebrew formulae the jobs expect, and Xcode when a .xip
# URL is given (Apple's downloads need a sign-in, so it comes from a mirror).
set -euo pipefail
: "${BREW_PACKAGES?BREW_PACKAGES is required (may be empty)}" "${XCODE_XIP_URL?XCODE_XIP_URL is required (may be empty)}"
export HOMEBREW_NO_AUTO_UPDATE=1 HOMEBREW_NO_INSTALL_CLEANUP=1 HOMEBREW_NO_ANALYTICS=1
eval "$(/opt/homebrew/bin/brew shellenv)"

if [ -n "$BREW_PACKAGES" ]; then
  brew update
  read -r -a packages <<<"$BREW_PACKAGES"
  brew install "${packages[@]}"
fi

if [ -n "$XCODE_XIP_URL" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  curl -fsSL --retry 3 -o "$work/Xcode.xip" "$XCODE_XIP_URL"
  (cd "$work" && xip --expand Xcode.xip)
  app=$(find "$work" -maxdepth 1 -name 'Xcode*.app' -print -quit)
  [ -n "$app" ] || { echo "tooling: no Xcode*.app in $XCODE_XIP_URL" >&2; exit 1; }
  sudo rm -rf "/Applications/$(basename "$app")"
  sudo mv "$app" /Applications/
  sudo xcode-select -s "/Applications/$(basename "$app")"
  sudo xcodebuild -license accept
  sudo xcodebuild -runFirstLaunch
fi
