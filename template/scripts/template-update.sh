#!/usr/bin/env bash
# Take the template's newest version with the recorded answers (`copier update`), then list
# what needs a hand: files with conflict markers and rejected hunks (.rej). The scheduled
# CI job runs exactly this and opens a pull request with the report as its body.
#
#   bash scripts/template-update.sh                     # newest template release
#   bash scripts/template-update.sh --vcs-ref v2.0.0    # a given template version
#   bash scripts/template-update.sh --report update.md  # also write the report to a file
#
# Needs copier (pip install 'copier>=9.4,<10') and a clean git tree. Exits 0 when conflicts
# remain (they are listed); resolve them, then `bash scripts/lint.sh` finds no leftovers.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

vcs_ref=()
report=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --vcs-ref) vcs_ref=(--vcs-ref "$2"); shift 2 ;;
        --report) report="$2"; shift 2 ;;
        -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "template-update.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

if ! command -v copier >/dev/null 2>&1; then
    echo "template-update.sh: copier is not installed: pip install 'copier>=9.4,<10'" >&2
    exit 1
fi
if [[ -n "$(git status --porcelain)" ]]; then
    echo "template-update.sh: commit or stash your changes first; copier update needs a clean tree" >&2
    exit 1
fi

answers=.copier-answers.yml
commit_of() { sed -n 's/^_commit: *//p' "${answers}"; }
before="$(commit_of)"
log="$(mktemp)"
trap 'rm -f "${log}"' EXIT
# --defaults keeps every recorded answer; --trust lets the template's migrations run.
copier update --trust --defaults --conflict inline "${vcs_ref[@]}" 2>&1 | tee "${log}"
after="$(commit_of)"

mapfile -t changed < <(git status --porcelain | cut -c4-)
mapfile -t conflicted < <(git grep --untracked -lE '^(<{7}|>{7})( |$)' -- . 2>/dev/null || true)
mapfile -t rejected < <(find . -name '*.rej' -not -path './.git/*' | sed 's|^\./||' | sort)

{
    echo "## Template update ${before} -> ${after}"
    echo
    if [[ ${#changed[@]} -eq 0 ]]; then
        echo "Already up to date: nothing changed."
    else
        echo "${#changed[@]} file(s) changed by \`copier update --trust --defaults\`."
    fi
    if [[ ${#conflicted[@]} -gt 0 || ${#rejected[@]} -gt 0 ]]; then
        echo
        echo "### Conflicts to resolve before merging"
        echo
        for path in "${conflicted[@]}"; do echo "- \`${path}\`: conflict markers"; done
        for path in "${rejected[@]}"; do echo "- \`${path}\`: rejected hunks"; done
        echo
        echo "Edit each file (keep your change, the template's, or both), delete the .rej"
        echo "files, and check with \`bash scripts/lint.sh\`."
    elif [[ ${#changed[@]} -gt 0 ]]; then
        echo
        echo "No conflicts."
    fi
    # Migrations print what changed for you, one line each, prefixed with the template name.
    if grep -q '^copier-pytorch-cuda:' "${log}"; then
        echo
        echo "### Notes from the template"
        echo
        grep '^copier-pytorch-cuda:' "${log}" | sed 's/^copier-pytorch-cuda: */- /'
    fi
} | tee "${report:-/dev/null}"
