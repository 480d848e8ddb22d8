#!/bin/sh
# Checks the playbook offline: syntax with ansible-playbook, style and
# correctness with ansible-lint. CI runs this; it exits non-zero on a finding.
set -eu
cd "$(dirname "$0")"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
ansible-playbook --syntax-check -i inventory.example.yml site.yml
ansible-lint --offline site.yml roles/macos_runner
