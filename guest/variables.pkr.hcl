// Every knob of the runner image, in one place. Override any of them at
// build time, e.g.:
//   packer build -var runner_version=2.333.0 -var runner_sha256=<sha256> \
//     -var "ssh_authorized_keys=$(cat ~/.ssh/macos-runner.pub)" .

variable "base_image" {
  type        = string
  description = "The tart image the runner image starts from (Setup Assistant done, Remote Login on, Homebrew installed)."
  default     = "ghcr.io/cirruslabs/macos-sequoia-base:latest"
}

variable "vm_name" {
  type        = string
  description = "The local VM the build leaves behind; guest/push pushes it."
  default     = "macos-runner-sequoia"
}

variable "image_os" {
  type        = string
  description = "ImageOS in the runner's .env (what actions such as setup-python key their caches on)."
  default     = "macos15"
}

variable "user" {
  type        = string
  description = "The runner user: owns ~/actions-runner, logs in automatically, is vm.ssh.user in the product's config."
  default     = "admin"
}

variable "password" {
  type        = string
  description = "The runner user's password in the base image: Packer's SSH during the build and auto-login. SSH takes keys only once the build is done."
  default     = "admin"
  sensitive   = true
}

variable "ssh_authorized_keys" {
  type        = string
  description = "Public key line(s) the hosts log in with (the .pub of vm.ssh.private_key_path)."
}

variable "runner_version" {
  type        = string
  description = "The actions/runner release baked into the image. GitHub sends no jobs to a runner 30 days after the release that superseded it: rebuild when one lands."
  default     = "2.332.0"
}

variable "runner_sha256" {
  type        = string
  description = "sha256 of actions-runner-osx-arm64-<runner_version>.tar.gz, from the release page; the build fails on a mismatch."
  default     = "d53bedb30619a64e751bb9f729cc9e9b35eb1df5361651d54daae00db33f2e73"
}

variable "brew_packages" {
  type        = list(string)
  description = "Homebrew formulae the jobs expect."
  default     = ["git", "git-lfs", "jq", "gh", "xcbeautify", "cocoapods", "fastlane"]
}

variable "xcode_xip_url" {
  type        = string
  description = "Where to download Xcode_<version>.xip from (an internal mirror: Apple's downloads need a sign-in); empty for no Xcode."
  default     = ""
}

variable "cpu_count" {
  type    = number
  default = 4
}

variable "memory_gb" {
  type    = number
  default = 8
}

variable "disk_size_gb" {
  type        = number
  description = "Grown from the base image's; pull wants this much + 20 GB free on every host."
  default     = 100
}
