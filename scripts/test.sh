#!/usr/bin/env bash
# Run the template's whole test suite, installing what it needs first.
#
#   bash scripts/test.sh [pytest arguments...]
#
# Creates .venv (Python tools from pyproject.toml's "test" dependency group) and
# node_modules (the Dev Containers CLI, from package-lock.json), then runs pytest on all
# cores. The generated projects' own tests install CPU torch 2.13.0 into a cached venv
# under .cache/ on first use.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

python="${PYTHON:-python3}"
if [[ ! -x .venv/bin/python ]]; then
    "${python}" -m venv .venv
fi
# pip >= 25.1 reads dependency groups (PEP 735).
.venv/bin/python -m pip install --quiet --upgrade "pip>=25.1"
.venv/bin/python -m pip install --quiet --group test

if [[ ! -x node_modules/.bin/devcontainer ]] || [[ package-lock.json -nt node_modules ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

# System tools some tests run for real (a missing one fails its tests, never skips them),
# installed from Debian's packages when running as root, as CI does (or with sudo when it
# needs no password). Add to the list:
#   openssh-server   sshd -t validates the generated SSH config (tests/validate/test_ssh.py)
#   buildah          builds and runs the generated images (tests/container; needs root)
#   debootstrap      makes the Debian root file system of their stand-in base image
#   slurmctld slurmd slurm-client munge iproute2 python3-venv
#                    a real two-node Slurm that runs the generated sbatch (tests/cluster;
#                    needs root): the daemons, their clients, network namespaces, and a venv
#                    on /usr/bin/python3 for the jobs
apt_packages=()
[[ -x /usr/sbin/sshd ]] || apt_packages+=(openssh-server)
command -v buildah >/dev/null || apt_packages+=(buildah)
command -v debootstrap >/dev/null || [[ -x /usr/sbin/debootstrap ]] || apt_packages+=(debootstrap)
[[ -x /usr/sbin/slurmctld ]] || apt_packages+=(slurmctld)
[[ -x /usr/sbin/slurmd ]] || apt_packages+=(slurmd)
[[ -x /usr/bin/sbatch ]] || apt_packages+=(slurm-client)
[[ -x /usr/sbin/munged ]] || apt_packages+=(munge)
[[ -x /usr/sbin/ip ]] || [[ -x /usr/bin/ip ]] || apt_packages+=(iproute2)
/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || apt_packages+=(python3-venv)
if [[ ${#apt_packages[@]} -gt 0 ]]; then
    sudo=()
    if [[ "$(id -u)" != 0 ]] && sudo -n true 2>/dev/null; then sudo=(sudo); fi
    if [[ "$(id -u)" == 0 || ${#sudo[@]} -gt 0 ]]; then
        # munge, slurmctld and slurmd would start as system services on install; the cluster
        # tests start their own. Debian's policy-rc.d (exit 101) forbids that, for this
        # install only, where the machine has none.
        policy=/usr/sbin/policy-rc.d
        added_policy=0
        if [[ ! -e "${policy}" ]]; then
            printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "${policy}" >/dev/null
            "${sudo[@]}" chmod 755 "${policy}"
            added_policy=1
        fi
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${apt_packages[@]}" >/dev/null
        if ((added_policy)); then "${sudo[@]}" rm -f "${policy}"; fi
    else
        echo "test.sh: as root, or by hand: apt-get install ${apt_packages[*]}" \
            "(or deselect the container and cluster tests: -m 'not container and not cluster')" >&2
    fi
fi

export PATH="${PWD}/.venv/bin:${PWD}/node_modules/.bin:${PATH}"
# loadgroup: the container tests and the cluster tests (one xdist group each) each run in
# order on one worker, sharing their image builds or their Slurm cluster, while the other
# workers take the rest.
exec python -m pytest -n "${PYTEST_WORKERS:-auto}" --dist loadgroup "$@"
