#compdef chaos

_chaos_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _CHAOS_COMPLETE=complete_zsh chaos)
}

compdef _chaos_completion chaos
