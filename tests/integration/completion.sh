#!/usr/bin/env bash
# completion: the bash completion the .deb installs offers every verb,
# sub-verb and option that `remapctl --help` lists, and nothing it does not
# (so the two cannot drift apart), and completes option values.
source "$(dirname "$0")/functions.sh"
# shellcheck source=../../packaging/bash-completion/remapctl
source "$(dirname "$0")/../../packaging/bash-completion/remapctl"

# completions WORD...: what completing after `remapctl WORD...` offers, sorted.
completions() {
  COMP_WORDS=(remapctl "$@")
  COMP_CWORD=$#
  COMPREPLY=()
  _remapctl
  printf '%s\n' "${COMPREPLY[@]}" | sort | paste -sd' '
}
# help_names ARGS...: the subcommands, or the --options, of `remapctl ARGS... --help`.
help_subcommands() {
  "$REMAPCTL" "$@" --help | sed -n '/^Subcommands:/,$p' | sed -n 's/^  \([a-z-]*\) .*/\1/p' | sort | paste -sd' '
}
help_options() {
  "$REMAPCTL" "$@" --help | sed -n '/^Options:/,/^$/p' | grep -o -- '--[a-z-]*' | grep -v -- '^--help$' | sort -u | paste -sd' '
}

assert_eq "verbs" "$(printf '%s\n' $(help_subcommands) --help --version | sort | paste -sd' ')" "$(completions "")"
assert_eq "fault's verbs" "$(help_subcommands fault)" "$(completions fault "")"
assert_eq "scrub's verbs" "$(help_subcommands scrub)" "$(completions scrub "")"
for verb in create rebind status health metrics flush export import map list check events remap unremap mark-pending \
            "fault add" "fault import" "fault list" "fault remove" "fault clear" \
            "scrub start" "scrub pause" "scrub resume" "scrub stop" "scrub status"; do
  # shellcheck disable=SC2086  # a verb may be two words
  want=$(printf '%s\n' $(help_options $verb) --help | sort | paste -sd' ')
  # shellcheck disable=SC2086
  assert_eq "options of $verb" "$want" "$(completions $verb --)"
done
assert_eq "--device values" "main spare" "$(completions fault add --device "")"
assert_eq "--op values" "both read write" "$(completions fault add --op "")"
assert_eq "--format values" "badblocks ddrescue json md" "$(completions export --format "")"
assert_eq "--sector-size values" "4096 512" "$(completions create --sector-size "")"
touch "$T/set.db"
assert_eq "TARGET is a path" "$T/set.db" "$(completions status "$T/set")"
