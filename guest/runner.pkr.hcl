// The runner image: the base image plus the pinned actions runner, key-only
// SSH with a host key of its own, no sleep, screen lock, Spotlight or
// automatic updates, the clock synced at every start. guest/README.md has
// the whole procedure (build, test, push, record the host key).
packer {
  required_plugins {
    tart = {
      version = ">= 1.12.0"
      source  = "github.com/cirruslabs/tart"
    }
  }
}

source "tart-cli" "runner" {
  vm_base_name = var.base_image
  vm_name      = var.vm_name
  cpu_count    = var.cpu_count
  memory_gb    = var.memory_gb
  disk_size_gb = var.disk_size_gb
  headless     = true
  ssh_username = var.user
  ssh_password = var.password
  ssh_timeout  = "180s"
}

build {
  sources = ["source.tart-cli.runner"]

  provisioner "shell" {
    script           = "${path.root}/scripts/system-settings.sh"
    environment_vars = ["RUNNER_USER=${var.user}", "RUNNER_PASSWORD=${var.password}"]
  }

  provisioner "file" {
    source      = "${path.root}/files/dev.macos-runner.time-sync.plist"
    destination = "/tmp/dev.macos-runner.time-sync.plist"
  }

  provisioner "shell" {
    script = "${path.root}/scripts/time-sync.sh"
  }

  provisioner "shell" {
    script           = "${path.root}/scripts/tooling.sh"
    environment_vars = ["BREW_PACKAGES=${join(" ", var.brew_packages)}", "XCODE_XIP_URL=${var.xcode_xip_url}"]
  }

  provisioner "file" {
    source      = "${path.root}/files/org.cirruslabs.tart-guest-agent.plist"
    destination = "/tmp/org.cirruslabs.tart-guest-agent.plist"
  }

  provisioner "shell" {
    script = "${path.root}/scripts/guest-agent.sh"
  }

  provisioner "shell" {
    script           = "${path.root}/scripts/actions-runner.sh"
    environment_vars = ["RUNNER_VERSION=${var.runner_version}", "RUNNER_SHA256=${var.runner_sha256}", "IMAGE_OS=${var.image_os}"]
  }

  provisioner "shell" {
    script = "${path.root}/scripts/ssh-host-key.sh"
  }

  // The new host key, for guest/record-host-key on the hosts.
  provisioner "file" {
    direction   = "download"
    source      = "/etc/ssh/ssh_host_ed25519_key.pub"
    destination = "${path.root}/output/ssh_host_ed25519_key.pub"
  }

  // Last: from here on SSH takes keys only (Packer keeps its open connection).
  provisioner "shell" {
    script           = "${path.root}/scripts/ssh-keys-only.sh"
    environment_vars = ["RUNNER_USER=${var.user}", "AUTHORIZED_KEYS=${var.ssh_authorized_keys}"]
  }

  // What guest/push labels the image with.
  provisioner "shell-local" {
    inline = ["printf 'VM_NAME=%s\\nRUNNER_VERSION=%s\\n' '${var.vm_name}' '${var.runner_version}' > '${path.root}/output/image.env'"]
  }
}
