#!/bin/sh
# Checks the playbook offline with ansible-lint: syntax (its syntax-check rule
# runs ansible-playbook --syntax-check on site.yml), style and correctness.
# CI runs this; it exits non-zero on a finding.
set -eu
cd "$(dirname "$0")"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
ansible-lint --offline site.yml roles/macos_runner
