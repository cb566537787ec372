#!/usr/bin/env bash
# preflight.sh: check this host before VS Code builds or pulls the dev container image.
#
# Why it exists: the image is 10+ GB, and the usual ways a GPU project fails only show up
# after that download, inside the container: a host driver too old for the image's CUDA
# release (torch.cuda.is_available() is False), a GPU that torch in the image has no
# kernels for ("no kernel image is available for execution on the device"), or Docker
# without the NVIDIA runtime (the Dev Containers CLI then starts the container without
# --gpus, silently). devcontainer.json runs this script as "initializeCommand", on the
# host, so these show up in seconds, each with the exact command that fixes it.
#
# What it checks, against stack.env next to this script (written by copier: the image's
# CUDA release, torch build, architectures and driver requirements):
#   1. NVIDIA driver (nvidia-smi) vs the driver the image's CUDA release needs
#   2. each GPU's compute capability vs the architectures torch in the image is built
#      for, and vs the project's GPU range (gpu_generation to newest_gpu_generation)
#   3. Docker's NVIDIA runtime (skipped when docker is not installed, e.g. Podman)
# Without an NVIDIA GPU (no nvidia-smi, macOS, driver not loaded) it prints one line:
# the container runs in CPU mode.
#
# Exit status: 0 when the container can be opened (warnings included), 1 when it
# certainly could not use the GPU (an ERROR line says why and how to fix it), 2 on a
# wrong option.
#
# Usage: bash .devcontainer/preflight.sh [--help]
#        bash .devcontainer/preflight.sh --capability CAP   check a GPU of compute
#             capability CAP (e.g. 12.0) against the image, without having one
# Environment:
#   PREFLIGHT_SKIP=1     skip every check and exit 0 (escape hatch: set it in the
#                        environment VS Code or `devcontainer up` is started from)
#   PREFLIGHT_CDI_DIRS   folders searched for NVIDIA CDI specs
#                        (default: "/etc/cdi /var/run/cdi")
#
# Portable on purpose: plain bash 3.2+ (macOS /bin/bash), no sort -V, no GNU-only tools.

# Started by a POSIX sh (`sh preflight.sh`): this block is POSIX, the rest is bash.
if [ -z "${BASH_VERSION:-}" ]; then
    if command -v bash >/dev/null 2>&1; then
        exec bash "$0" "$@"
    fi
    echo "preflight: bash not found; host checks skipped"
    exit 0
fi

# The folder of this script, whatever the current directory (CDPATH= keeps cd quiet).
SCRIPT_DIR=$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
STACK_ENV="$SCRIPT_DIR/stack.env"
ERRORS=0
WARNINGS=0

say() { printf 'preflight: %s\n' "$*"; }
ok() { say "OK: $*"; }
note() { say "note: $*"; }
warn() { say "WARNING: $*"; WARNINGS=$((WARNINGS + 1)); }
err() { say "ERROR: $*"; ERRORS=$((ERRORS + 1)); }
fix() { say "  fix: $*"; }

usage() {
    # Print the header comment block (after the shebang, up to the first blank line).
    local line first=1
    while IFS= read -r line; do
        if [ $first = 1 ]; then first=0; continue; fi
        case $line in
            '#'*) line=${line#\#}; printf '%s\n' "${line# }" ;;
            *) break ;;
        esac
    done <"${BASH_SOURCE[0]}"
}

# Run a command with a time limit where `timeout` exists (a wedged driver can hang
# nvidia-smi, a wedged daemon `docker info`).
limited() {
    local seconds=$1
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout "$seconds" "$@"
    else
        "$@"
    fi
}

# version_ge A B: true when version A >= B, compared numerically part by part
# ("580" is 580.0.0, "580.65.06" > "580"). Pure bash: macOS has no sort -V.
version_ge() {
    local a=$1 b=$2 x y
    while [ -n "$a" ] || [ -n "$b" ]; do
        x=${a%%.*}
        y=${b%%.*}
        case $a in *.*) a=${a#*.} ;; *) a= ;; esac
        case $b in *.*) b=${b#*.} ;; *) b= ;; esac
        x=${x//[!0-9]/}
        y=${y//[!0-9]/}
        x=$((10#${x:-0}))
        y=$((10#${y:-0}))
        if [ "$x" -gt "$y" ]; then return 0; fi
        if [ "$x" -lt "$y" ]; then return 1; fi
    done
    return 0
}

# cap_value "8.6" -> 806: compute capabilities as one comparable integer; empty if malformed.
cap_value() {
    local cap=$1 major minor
    case $cap in
        *.*) major=${cap%%.*} minor=${cap#*.} ;;
        *) major=$cap minor=0 ;;
    esac
    minor=${minor%%[!0-9]*}
    case $major in '' | *[!0-9]*) return 0 ;; esac
    case $minor in '' | *[!0-9]*) return 0 ;; esac
    echo $((10#$major * 100 + 10#$minor))
}

# arch_match GPU_CAP: how torch in the image runs on a GPU of compute capability GPU_CAP.
# Sets MATCH to "sass" (native code for the same major, minor <= the GPU's), "ptx"
# (JIT from a +PTX entry <= the GPU's) or "" (no kernels: the image cannot run on it),
# and MATCH_ARCH to the IMAGE_ARCH_LIST entry used.
arch_match() {
    local gpu entry arch value suffix ptx rest=$IMAGE_ARCH_LIST
    gpu=$(cap_value "$1")
    MATCH=
    MATCH_ARCH=
    [ -n "$gpu" ] || return 0
    while [ -n "$rest" ]; do
        entry=${rest%%[; ]*}
        case $rest in *[\;\ ]*) rest=${rest#*[; ]} ;; *) rest= ;; esac
        [ -n "$entry" ] || continue
        ptx=0
        case $entry in *+PTX | *+ptx) ptx=1 entry=${entry%+*} ;; esac
        arch=$entry
        suffix=${entry##*[0-9]}
        value=$(cap_value "${entry%"$suffix"}")
        [ -n "$value" ] || continue
        # Native code runs on the same major with an equal or higher minor; "a"
        # (architecture-specific) code only on exactly that capability.
        if [ $((value / 100)) -eq $((gpu / 100)) ] && [ "$value" -le "$gpu" ]; then
            if [ "$suffix" != a ] || [ "$value" -eq "$gpu" ]; then
                MATCH=sass MATCH_ARCH=$arch
                return 0
            fi
        fi
        if [ $ptx = 1 ] && [ "$value" -le "$gpu" ] && [ -z "$MATCH" ]; then
            MATCH=ptx MATCH_ARCH=$arch
        fi
    done
    return 0
}

# generation_of CAP: the GENERATION_TABLE generation that lists this compute capability.
# Exact, like the doctor and the post-copy hook: a capability no generation lists (a
# future 13.0, say) is unknown. Sets GEN ("" when unknown) and GEN_INDEX (0 = oldest).
generation_of() {
    local cap word gen caps c value index=0
    cap=$(cap_value "$1")
    GEN=
    GEN_INDEX=-1
    [ -n "$cap" ] || return 0
    for word in $GENERATION_TABLE; do
        gen=${word%%:*}
        caps=${word#*:}
        for c in ${caps//,/ }; do
            value=$(cap_value "$c")
            if [ -n "$value" ] && [ "$value" -eq "$cap" ]; then
                GEN=$gen GEN_INDEX=$index
                return 0
            fi
        done
        index=$((index + 1))
    done
    return 0
}

# The position of a generation name in GENERATION_TABLE (-1 when absent).
generation_index() {
    local word index=0
    for word in $GENERATION_TABLE; do
        if [ "${word%%:*}" = "$1" ]; then
            echo $index
            return 0
        fi
        index=$((index + 1))
    done
    echo -1
}

check_driver() {
    local driver=$1 needed entry floor line fallback="" oldest=""
    needed=${DRIVER_TOOLKIT:-$DRIVER_FLOOR}
    if [ -z "$DRIVER_FLOOR" ]; then
        note "stack.env names no minimum driver for CUDA $CUDA_VERSION: driver $driver not checked"
        return 0
    fi
    if ! version_ge "$driver" "$DRIVER_FLOOR"; then
        for entry in $DRIVER_FALLBACKS; do
            floor=${entry%%:*}
            line=${entry#*:}
            oldest=$floor
            if [ -z "$fallback" ] && version_ge "$driver" "$floor"; then
                fallback=$line
            fi
        done
        err "NVIDIA driver $driver is too old for CUDA $CUDA_VERSION in this image (needs >= $DRIVER_FLOOR): the container cannot use the GPU."
        if [ -n "$fallback" ]; then
            fix "upgrade the host driver to >= $needed, or keep this driver and move the project to torch $fallback, whose image runs on it:"
            say "    copier update --trust --defaults --data torch_version=$fallback"
        else
            fix "upgrade the host driver to >= $needed; no image this template offers runs on driver $driver (the oldest needs >= ${oldest:-$DRIVER_FLOOR})."
        fi
    elif [ -n "$DRIVER_TOOLKIT" ] && ! version_ge "$driver" "$DRIVER_TOOLKIT"; then
        warn "NVIDIA driver $driver is older than $DRIVER_TOOLKIT of CUDA $CUDA_VERSION: the image runs through CUDA minor-version compatibility, without features that need a newer driver (such as PTX JIT of newer code)."
        fix "upgrade the host driver to >= $DRIVER_TOOLKIT"
    elif [ -n "$DRIVER_TOOLKIT" ]; then
        ok "driver $driver >= $DRIVER_TOOLKIT required by CUDA $CUDA_VERSION"
    else
        ok "driver $driver >= $DRIVER_FLOOR, the oldest that runs CUDA $CUDA_VERSION (NVIDIA names no exact driver for this release)"
    fi
}

# check_gpus DRIVER: every distinct GPU (names, caps and counts in the arrays) against the
# image's architectures and the project's GPU range (GPU_GENERATION to NEWEST_GPU_GENERATION).
# A GPU runs the project when the image's arch list covers it, whatever its generation.
check_gpus() {
    local driver=$1 i label cap gen oldest_index newest_index first_gen first_cap range_fix
    local oldest_here=-1 oldest_here_gen="" oldest_here_cap=""
    first_gen=${GENERATION_TABLE%% *}
    first_cap=${first_gen#*:}
    first_cap=${first_cap%%,*}
    first_gen=${first_gen%%:*}
    oldest_index=$(generation_index "$GPU_GENERATION")
    newest_index=$(generation_index "${NEWEST_GPU_GENERATION:-$GPU_GENERATION}")
    i=0
    while [ $i -lt ${#GPU_NAMES[@]} ]; do
        cap=${GPU_CAPS[$i]}
        label=${GPU_NAMES[$i]}
        if [ "${GPU_COUNTS[$i]}" -gt 1 ]; then label="${GPU_COUNTS[$i]}x $label"; fi
        i=$((i + 1))
        if [ -z "$(cap_value "$cap")" ]; then
            note "GPU $label: nvidia-smi reports no compute capability (\"$cap\"); architecture not checked"
            continue
        fi
        generation_of "$cap"
        arch_match "$cap"
        gen=$GEN
        # The answer that would bring this GPU into the project's range, if it is outside.
        range_fix=
        if [ -n "$gen" ] && [ "$GEN_INDEX" -lt "$oldest_index" ]; then
            range_fix="gpu_generation=$gen"
        elif [ -n "$gen" ] && [ "$GEN_INDEX" -gt "$newest_index" ]; then
            range_fix="newest_gpu_generation=$gen"
        fi
        if [ -n "$gen" ] && { [ "$oldest_here" -lt 0 ] || [ "$GEN_INDEX" -lt "$oldest_here" ]; }; then
            oldest_here=$GEN_INDEX oldest_here_gen=$gen oldest_here_cap=$cap
        fi
        if [ -z "$MATCH" ]; then
            if [ -n "$range_fix" ]; then
                err "GPU $label ($cap, $gen) cannot run this image: torch $TORCH_VERSION is built for $IMAGE_ARCH_LIST, so CUDA calls would fail with \"no kernel image is available for execution on the device\"."
                fix "copier update --trust --defaults --data $range_fix"
            elif [ -z "$gen" ] && [ "$(cap_value "$cap")" -lt "$(cap_value "$first_cap")" ]; then
                err "GPU $label (compute capability $cap) is older than $first_gen ($first_cap), the oldest generation this template supports: torch in this image has no kernels for it."
                fix "use a $first_gen ($first_cap) or newer GPU; on this machine, train on CPU (--device cpu)"
            elif [ -z "$gen" ]; then
                err "GPU $label (compute capability $cap) is newer than every generation this template knows, and torch $TORCH_VERSION ($IMAGE_ARCH_LIST) has no kernels or PTX for it."
                fix "update the template once it knows this GPU: copier update --trust --defaults"
            else
                err "GPU $label ($cap, $gen) cannot run this image: torch $TORCH_VERSION is built for $IMAGE_ARCH_LIST, and no image this template offers has kernels for it."
                fix "Jetson GPUs need NVIDIA's Jetson (L4T) containers; on this machine, train on CPU (--device cpu)"
            fi
            continue
        fi
        if [ "$MATCH" = ptx ]; then
            if [ -n "$DRIVER_TOOLKIT" ] && [ -n "$driver" ] && ! version_ge "$driver" "$DRIVER_TOOLKIT"; then
                err "GPU $label ($cap, ${gen:-unknown generation}) runs this image only through PTX JIT from $MATCH_ARCH, which needs driver >= $DRIVER_TOOLKIT: with driver $driver, CUDA calls would fail."
                fix "upgrade the host driver to >= $DRIVER_TOOLKIT"
            else
                ok "GPU $label ($cap, ${gen:-unknown generation}) runs this image through PTX JIT from $MATCH_ARCH (the first run of each kernel is slow)"
            fi
        elif [ -n "$range_fix" ]; then
            if [ "$GEN_INDEX" -lt "$oldest_index" ]; then
                warn "GPU $label ($cap, $gen) runs this image, but it is older than the project's GPU range ($FLEET_LABEL): an update may drop its kernels, and the defaults chosen for the range (bf16 autocast, TF32) may not fit it."
            else
                warn "GPU $label ($cap, $gen) runs this image, but it is newer than the project's GPU range ($FLEET_LABEL): an update may drop its kernels."
            fi
            fix "copier update --trust --defaults --data $range_fix"
        elif [ -z "$gen" ] && [ "$(cap_value "$cap")" -lt "$(cap_value "$first_cap")" ]; then
            warn "GPU $label (compute capability $cap) is older than $first_gen ($first_cap), the oldest generation this template supports: this image still has kernels for it ($MATCH_ARCH), but updates may drop them."
        elif [ -z "$gen" ]; then
            warn "GPU $label (compute capability $cap) belongs to no generation this template knows; this image still has native kernels for it ($MATCH_ARCH)."
        else
            ok "GPU $label ($cap, $gen) runs this image"
        fi
    done

    # GPU_GENERATION is the oldest GPU the project must run on; when every GPU here is newer,
    # a narrower range may get a newer stack (a note, nothing is wrong).
    [ -n "$oldest_here_gen" ] && [ $ERRORS -eq 0 ] || return 0
    if [ "$oldest_here" -gt "$oldest_index" ] && [ "$oldest_here" -le "$newest_index" ]; then
        note "this host's oldest GPU ($oldest_here_gen, $oldest_here_cap) is newer than the project's oldest target ($GPU_GENERATION): fine; if every machine the project runs on is that new, a stack for it: copier update --trust --defaults --data gpu_generation=$oldest_here_gen"
    fi
}

# nvidia_runtime_registered JSON: true when `docker info --format '{{json .Runtimes}}'`
# lists a runtime "nvidia" that runs nvidia-container-runtime. That is what the Dev
# Containers CLI asks before it adds --gpus all for hostRequirements.gpu "optional".
nvidia_runtime_registered() {
    local json=$1 entry
    case $json in *'"nvidia":{'*) ;; *) return 1 ;; esac
    entry=${json#*\"nvidia\":\{}
    entry=${entry%%\}*}
    case $entry in *nvidia-container-runtime*) return 0 ;; esac
    return 1
}

nvidia_toolkit_found() {
    local dir spec
    if command -v nvidia-ctk >/dev/null 2>&1 || command -v nvidia-container-runtime >/dev/null 2>&1; then
        return 0
    fi
    for dir in ${PREFLIGHT_CDI_DIRS-/etc/cdi /var/run/cdi}; do
        for spec in "$dir"/nvidia*.yaml "$dir"/nvidia*.json; do
            if [ -f "$spec" ]; then return 0; fi
        done
    done
    return 1
}

check_docker() {
    local json
    if ! command -v docker >/dev/null 2>&1; then
        note "docker not found: NVIDIA container runtime not checked (Podman: give the container the GPU through CDI, --device nvidia.com/gpu=all)"
        return 0
    fi
    if ! json=$(limited 20 docker info --format '{{json .Runtimes}}' 2>/dev/null); then
        note "'docker info' failed (daemon not running, or no permission on its socket): NVIDIA container runtime not checked"
        return 0
    fi
    local configure="sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker"
    if nvidia_runtime_registered "$json"; then
        ok "Docker has the NVIDIA runtime: the container gets the GPU"
    elif nvidia_toolkit_found; then
        warn "the NVIDIA Container Toolkit is installed but Docker does not list its runtime, so the Dev Containers CLI starts the container without the GPU (CPU mode)."
        fix "$configure"
    else
        warn "Docker has no NVIDIA runtime: the container will start without the GPU (CPU mode)."
        fix "install the NVIDIA Container Toolkit (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html), then: $configure"
    fi
}

# check_capability CAP: the GPU check alone, for a GPU this host may not have.
check_capability() {
    if [ -z "$(cap_value "$1")" ]; then
        say "--capability needs a compute capability such as 8.6 or 12.0, not '$1'"
        return 2
    fi
    if [ ! -f "$STACK_ENV" ]; then
        say "WARNING: $STACK_ENV not found (it comes from copier): nothing to check against."
        return 1
    fi
    # shellcheck source=/dev/null
    . "$STACK_ENV"
    GPU_NAMES=("sm_${1//./}")
    GPU_CAPS=("$1")
    GPU_COUNTS=(1)
    check_gpus ""
    [ $ERRORS -eq 0 ]
}

main() {
    case ${1:-} in
        -h | --help)
            usage
            return 0
            ;;
        --capability)
            check_capability "${2:-}"
            return
            ;;
        '') ;;
        *)
            say "unknown option '$1' (see --help)"
            return 2
            ;;
    esac
    case ${PREFLIGHT_SKIP:-} in
        '' | 0 | false | no) ;;
        *)
            say "PREFLIGHT_SKIP=$PREFLIGHT_SKIP: host checks skipped"
            return 0
            ;;
    esac

    if [ "$(uname -s 2>/dev/null)" = Darwin ]; then
        say "macOS: Docker has no NVIDIA GPU access here; the container runs in CPU mode."
        return 0
    fi
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        say "no NVIDIA GPU found (nvidia-smi not on PATH): the container runs in CPU mode."
        return 0
    fi
    local output
    if ! output=$(limited 30 nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>/dev/null); then
        # Drivers older than ~510 do not know compute_cap: read the driver at least.
        if ! output=$(limited 30 nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null) || [ -z "$output" ]; then
            say "nvidia-smi failed (NVIDIA driver not loaded?): the container runs in CPU mode."
            return 0
        fi
    fi
    if [ -z "$output" ]; then
        say "nvidia-smi lists no GPU: the container runs in CPU mode."
        return 0
    fi

    if [ ! -f "$STACK_ENV" ]; then
        say "WARNING: $STACK_ENV not found (it comes from copier): host checks skipped."
        return 0
    fi
    # stack.env is generated by copier (stack.env.jinja in the template), so shellcheck
    # cannot follow it from the template; its variables are plain KEY=value lines.
    # shellcheck source=/dev/null
    . "$STACK_ENV"

    # One line per GPU: "name, driver, cap" (name may contain ", ": split from the right).
    GPU_NAMES=()
    GPU_CAPS=()
    GPU_COUNTS=()
    local line name driver cap rest min_driver="" i found
    while IFS= read -r line; do
        line=${line%$'\r'}
        [ -n "$line" ] || continue
        case $line in *', '*) ;; *) continue ;; esac
        rest=${line%, *}
        cap=${line##*, }
        case $rest in
            *', '*) driver=${rest##*, } name=${rest%, *} ;;
            *) driver=$cap name=$rest cap="[N/A]" ;; # no compute_cap column
        esac
        if [ -z "$min_driver" ] || ! version_ge "$driver" "$min_driver"; then
            min_driver=$driver
        fi
        found=0
        i=0
        while [ $i -lt ${#GPU_NAMES[@]} ]; do
            if [ "${GPU_NAMES[$i]}" = "$name" ] && [ "${GPU_CAPS[$i]}" = "$cap" ]; then
                GPU_COUNTS[i]=$((GPU_COUNTS[i] + 1))
                found=1
                break
            fi
            i=$((i + 1))
        done
        if [ $found = 0 ]; then
            GPU_NAMES+=("$name")
            GPU_CAPS+=("$cap")
            GPU_COUNTS+=(1)
        fi
    done <<EOF
$output
EOF
    if [ ${#GPU_NAMES[@]} -eq 0 ]; then
        say "nvidia-smi output not understood: host checks skipped; the container may run in CPU mode."
        return 0
    fi

    say "checking this host for the image: CUDA $CUDA_VERSION, torch $TORCH_VERSION, built for $IMAGE_ARCH_LIST"
    check_driver "$min_driver"
    check_gpus "$min_driver"
    check_docker

    if [ $ERRORS -gt 0 ]; then
        say "$ERRORS error(s): the container could not use the GPU. Fix the above, or open it anyway with PREFLIGHT_SKIP=1 in the environment."
        return 1
    fi
    if [ $WARNINGS -gt 0 ]; then
        say "done: $WARNINGS warning(s), the container can start."
    else
        say "done: this host is ready for the image."
    fi
    return 0
}

main "$@"
