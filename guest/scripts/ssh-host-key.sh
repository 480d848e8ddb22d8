#!/bin/bash
# In the guest: a host key of this image's own. The base image's keys are
# shared by everyone who uses it; every clone of this image shares these
# (hosts pin them under the alias macos-runner-guest).
set -euo pipefail
sudo rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub
sudo ssh-keygen -A
sudo chmod 0644 /etc/ssh/ssh_host_ed25519_key.pub
ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub
