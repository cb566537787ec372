#!/usr/bin/env bash
# Create the container user USERNAME with USER_UID:USER_GID, idempotently.
#
# Run as root while the image builds. Bases on Ubuntu 24.04 (NGC, recent pytorch devel
# images) already have a user "ubuntu" at UID 1000: it is renamed rather than duplicated,
# because `useradd --uid 1000` fails there ("UID 1000 is not unique").
set -euo pipefail

username="${1:?usage: create-user.sh USERNAME UID GID}"
uid="${2:?usage: create-user.sh USERNAME UID GID}"
gid="${3:?usage: create-user.sh USERNAME UID GID}"

existing_user="$(getent passwd "${uid}" | cut -d: -f1 || true)"
if [[ -n "${existing_user}" && "${existing_user}" != "${username}" ]]; then
    usermod --login "${username}" --home "/home/${username}" --move-home "${existing_user}"
    # Rename the old user's private group too, but never a shared system group.
    if getent group "${existing_user}" >/dev/null; then
        groupmod --new-name "${username}" "${existing_user}"
    fi
fi

if ! getent group "${gid}" >/dev/null; then
    groupadd --gid "${gid}" "${username}"
fi
if ! id -u "${username}" >/dev/null 2>&1; then
    useradd --uid "${uid}" --gid "${gid}" --create-home --shell /bin/bash "${username}"
fi
install -d -o "${uid}" -g "${gid}" "/home/${username}"
