#!/usr/bin/env bash
# Create the container user USERNAME with USER_UID:USER_GID, idempotently.
#
# Run as root while the image builds. Bases on Ubuntu 24.04 (NGC, pytorch/pytorch 2.10+)
# already have a user "ubuntu" at UID 1000: it is renamed rather than duplicated, because
# `useradd --uid 1000` fails there ("UID 1000 is not unique"). On bases without one (older
# pytorch/pytorch images on Ubuntu 22.04) the user is simply added.
set -euo pipefail

usage="usage: create-user.sh USERNAME UID GID"
username="${1:?${usage}}"
uid="${2:?${usage}}"
gid="${3:?${usage}}"
if [[ ! "${uid}" =~ ^[0-9]+$ || ! "${gid}" =~ ^[0-9]+$ || "${uid}" == 0 ]]; then
    echo "create-user.sh: USER_UID and USER_GID must be numbers, and USER_UID not 0 (root); got ${uid}:${gid}" >&2
    exit 2
fi

# The UID is taken by another user: that user becomes ours, with its home moved.
existing_user="$(getent passwd "${uid}" | cut -d: -f1 || true)"
if [[ -n "${existing_user}" && "${existing_user}" != "${username}" ]]; then
    usermod --login "${username}" --home "/home/${username}" --move-home "${existing_user}"
    # Rename the old user's private group too, but never a shared system group.
    if getent group "${existing_user}" >/dev/null && ! getent group "${username}" >/dev/null; then
        groupmod --new-name "${username}" "${existing_user}"
    fi
fi

# The group: one that already has the GID is used as it is; otherwise ours gets it.
if ! getent group "${gid}" >/dev/null; then
    if getent group "${username}" >/dev/null; then
        groupmod --gid "${gid}" "${username}"
    else
        groupadd --gid "${gid}" "${username}"
    fi
fi

if id -u "${username}" >/dev/null 2>&1; then
    usermod --uid "${uid}" --gid "${gid}" "${username}"
else
    useradd --uid "${uid}" --gid "${gid}" --create-home --shell /bin/bash "${username}"
fi
install -d -o "${uid}" -g "${gid}" "/home/${username}"
