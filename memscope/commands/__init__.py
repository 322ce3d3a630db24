"""One module per ``memscope`` subcommand."""
