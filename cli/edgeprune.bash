# Bash completion for the edgeprune operator CLI: nouns, their verbs and the flags of each.
# Installed as /usr/share/bash-completion/completions/edgeprune; from a checkout:
#   source cli/edgeprune.bash
# Ids (devices, models, rollouts, jobs) come from the server: `edgeprune <noun> ls`.
_edgeprune() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    COMPREPLY=(); cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"
    words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD
  }
  local global="--config --context --server --ca --token-file -o --output -v --verbose --timeout --help"
  case "$prev" in
    -o|--output) COMPREPLY=($(compgen -W "table json" -- "$cur")); return ;;
    --ca|--config|--token-file|-f|--file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    --role) COMPREPLY=($(compgen -W "viewer operator admin" -- "$cur")); return ;;
    --status) COMPREPLY=($(compgen -W "online offline never_seen active revoked" -- "$cur")); return ;;
    --state) COMPREPLY=($(compgen -W "queued running succeeded failed cancelled" -- "$cur")); return ;;
  esac
  # The noun and verb typed so far, skipping flags and their values.
  local noun="" verb="" i w
  for ((i = 1; i < cword; i++)); do
    w="${words[i]}"
    case "$w" in
      --config|--context|--server|--ca|--token-file|-o|--output|--timeout) ((i++)); continue ;;
      -*) continue ;;
    esac
    if [[ -z "$noun" ]]; then noun="$w"; elif [[ -z "$verb" ]]; then verb="$w"; fi
  done
  local verbs=""
  case "$noun" in
    "") COMPREPLY=($(compgen -W "login context devices enroll-tokens tokens audit telemetry models datasets deploy jobs rollouts $global" -- "$cur")); return ;;
    context) verbs="ls use" ;;
    devices) verbs="ls show tag caps revoke" ;;
    enroll-tokens) verbs="create ls revoke" ;;
    tokens) verbs="create ls revoke" ;;
    models) verbs="upload ls show variants" ;;
    datasets) verbs="upload ls show" ;;
    jobs) verbs="ls show cancel watch" ;;
    rollouts) verbs="create ls show pause resume promote abort approve" ;;
  esac
  if [[ -n "$verbs" && -z "$verb" ]]; then
    COMPREPLY=($(compgen -W "$verbs" -- "$cur")); return
  fi
  local flags=""
  case "$noun $verb" in
    "devices ls") flags="--status --tag --limit --cursor" ;;
    "devices tag") flags="--none" ;;
    "devices caps") flags="--latency-slo-ms --memory-reserve-bytes --max-model-bytes --clear" ;;
    "enroll-tokens create") flags="--ttl --max-uses --tag --note" ;;
    "tokens create") flags="--name --role" ;;
    "models upload") flags="--name --dataset --input-shape --class-names" ;;
    "datasets upload") flags="--name" ;;
    "jobs ls") flags="--state --kind" ;;
    "jobs watch") flags="--interval" ;;
    "rollouts create") flags="--file --model --device --tag --phases --bake --gate" ;;
    "rollouts show") flags="--watch --interval" ;;
    "audit "*) flags="--actor --action --target --limit --cursor" ;;
    "telemetry "*) flags="--limit --cursor" ;;
    "deploy "*) flags="--device --tag" ;;
    "login "*) flags="--server --ca --token-file --context" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$flags $global" -- "$cur"))
  elif [[ "$noun $verb" == "models upload" || "$noun $verb" == "datasets upload" ]]; then
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -F _edgeprune edgeprune
