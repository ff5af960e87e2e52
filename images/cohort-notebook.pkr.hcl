# The session runtime image: Ubuntu 22.04, the NVIDIA driver and CUDA,
# Python with Jupyter and the workshop's libraries, and cohort's session
# agent. `make image PROJECT=...` runs `packer init` and `packer build`
# here (Packer 1.7 or later; see docs/gcp.md).

packer {
  required_plugins {
    googlecompute = {
      version = ">= 1.1.6"
      source  = "github.com/hashicorp/googlecompute"
    }
  }
}

variable "project_id" {
  type        = string
  description = "the project that holds the image family"
}

variable "zone" {
  type    = string
  default = "us-central1-a"
}

variable "image_family" {
  type        = string
  default     = "cohort-notebook"
  description = "the family classes name; images are named after it, so that the gcp provider keeps a running VM's image"
  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,46}[a-z0-9])?$", var.image_family))
    error_message = "The image_family must be lower case letters, digits and dashes, start with a letter, and have at most 48 characters (the image name adds a timestamp)."
  }
}

variable "disk_size" {
  type        = number
  default     = 60
  description = "GB; a class's disk_gb must be at least this"
}

variable "source_image_family" {
  type    = string
  default = "ubuntu-2204-lts"
}

variable "source_image_project_id" {
  type    = string
  default = "ubuntu-os-cloud"
}

variable "nvidia_driver_branch" {
  type    = string
  default = "550"
}

variable "cuda_toolkit" {
  type    = string
  default = "cuda-toolkit-12-4"
}

variable "agent" {
  type        = string
  default     = "../bin/cohort-agent-linux-amd64"
  description = "the session agent, built by `make agent`"
}

locals {
  # 20261201093000: image names are lower case, digits and dashes.
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

source "googlecompute" "notebook" {
  project_id              = var.project_id
  zone                    = var.zone
  source_image_family     = var.source_image_family
  source_image_project_id = [var.source_image_project_id]
  machine_type            = "n1-standard-8"
  disk_size               = var.disk_size
  disk_type               = "pd-ssd"
  ssh_username            = "packer"
  image_name              = "${var.image_family}-${local.timestamp}"
  image_family            = var.image_family
  image_description       = "cohort session runtime: Ubuntu 22.04, NVIDIA driver, CUDA, Python, Jupyter, the workshop's libraries, the session agent"
  image_labels = {
    cohort = "notebook"
  }
}

build {
  sources = ["source.googlecompute.notebook"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/cohort"]
  }

  provisioner "file" {
    source      = "requirements.txt"
    destination = "/tmp/cohort/requirements.txt"
  }

  provisioner "file" {
    source      = "cohort-agent.service"
    destination = "/tmp/cohort/cohort-agent.service"
  }

  provisioner "file" {
    source      = "cohort-work.service"
    destination = "/tmp/cohort/cohort-work.service"
  }

  provisioner "file" {
    source      = var.agent
    destination = "/tmp/cohort/cohort-agent"
  }

  provisioner "shell" {
    execute_command  = "sudo -E bash '{{ .Path }}'"
    environment_vars = ["NVIDIA_DRIVER_BRANCH=${var.nvidia_driver_branch}", "CUDA_TOOLKIT=${var.cuda_toolkit}"]
    scripts          = ["scripts/10-nvidia.sh", "scripts/20-python.sh", "scripts/30-agent.sh", "scripts/90-manifest.sh"]
  }
}
