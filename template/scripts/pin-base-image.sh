#!/usr/bin/env bash
# Pin the base image by digest (optional): .devcontainer/Dockerfile's BASE_IMAGE_DIGEST.
#
#   bash scripts/pin-base-image.sh            # resolve BASE_IMAGE's digest now and pin it
#   bash scripts/pin-base-image.sh --check    # exit 1 if the pin belongs to another tag
#   bash scripts/pin-base-image.sh --remove   # back to the tag alone
#
# A tag (BASE_IMAGE, chosen by copier) can be pushed again with other contents; a digest
# cannot, so with a pin every build, the dev container's included, starts from the same
# bytes. The digest is the tag's manifest list (every platform), resolved by the first of
# `docker buildx imagetools inspect`, `crane digest` and `skopeo inspect --raw` that works
# (BASE_IMAGE_RESOLVERS="docker crane skopeo" sets which, in which order). The pin is the
# two lines under ARG BASE_IMAGE, which copier never changes: `copier update` moves the tag
# and then this pin with it (or keeps the pin and says so; `--check`, which lint.sh runs,
# fails until it matches the tag again).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dockerfile=.devcontainer/Dockerfile
mode=pin
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    --remove) mode=remove ;;
    -h | --help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "pin-base-image.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
esac

value_of() {  # the value of the Dockerfile line that starts with "$1"
    sed -n "s|^$1||p" "${dockerfile}" | head -n 1
}
image="$(value_of 'ARG BASE_IMAGE=')"
pinned_for="$(value_of '# base image pin: ')"
digest="$(value_of 'ARG BASE_IMAGE_DIGEST=')"
if [[ -z "${image}" ]] || ! grep -q '^ARG BASE_IMAGE_DIGEST=' "${dockerfile}"; then
    echo "pin-base-image.sh: ${dockerfile} has no 'ARG BASE_IMAGE=' and 'ARG BASE_IMAGE_DIGEST=' lines" >&2
    exit 2
fi

write_pin() {  # write_pin FOR DIGEST: the two pin lines, everything else untouched
    local tmp
    tmp="$(mktemp "${dockerfile}.XXXXXX")"
    sed -e "s|^# base image pin: .*|# base image pin: $1|" \
        -e "s|^ARG BASE_IMAGE_DIGEST=.*|ARG BASE_IMAGE_DIGEST=$2|" "${dockerfile}" > "${tmp}"
    chmod --reference="${dockerfile}" "${tmp}" 2>/dev/null || true
    mv "${tmp}" "${dockerfile}"
}

if [[ "${mode}" == check ]]; then
    if [[ -n "${digest}" && "${pinned_for}" != "${image}" ]]; then
        echo "pin-base-image.sh: the base image pin belongs to ${pinned_for:-another tag}, but BASE_IMAGE is ${image}; run \`bash scripts/pin-base-image.sh\` (or --remove)" >&2
        exit 1
    fi
    exit 0
fi
if [[ "${mode}" == remove ]]; then
    write_pin none ""
    echo "pin-base-image.sh: ${image} unpinned (the tag alone)"
    exit 0
fi

resolve() {  # resolve TOOL: print sha256:... of ${image}'s manifest (list), or fail
    case "$1" in
        docker)
            command -v docker >/dev/null 2>&1 || return 1
            docker buildx imagetools inspect "${image}" --format '{{json .Manifest}}' 2>/dev/null \
                | grep -o '"digest": *"sha256:[0-9a-f]*"' | head -n 1 | grep -o 'sha256:[0-9a-f]*' ;;
        crane)
            command -v crane >/dev/null 2>&1 || return 1
            crane digest "${image}" 2>/dev/null ;;
        skopeo)
            command -v skopeo >/dev/null 2>&1 || return 1
            local raw
            raw="$(mktemp)"
            if ! skopeo inspect --raw "docker://${image}" > "${raw}" 2>/dev/null; then
                rm -f "${raw}"
                return 1
            fi
            echo "sha256:$(sha256sum "${raw}" | cut -d' ' -f1)"
            rm -f "${raw}" ;;
        *) return 1 ;;
    esac
}

tried=()
for tool in ${BASE_IMAGE_RESOLVERS:-docker crane skopeo}; do
    tried+=("${tool}")
    found="$(resolve "${tool}" || true)"
    if [[ "${found}" =~ ^sha256:[0-9a-f]{64}$ ]]; then
        write_pin "${image}" "@${found}"
        echo "pin-base-image.sh: ${image} pinned to ${found} (by ${tool})"
        exit 0
    fi
done
echo "pin-base-image.sh: could not resolve the digest of ${image} with ${tried[*]:-no tool} (install one, log in to the registry if it needs it, and check the network); the Dockerfile is unchanged" >&2
exit 1
