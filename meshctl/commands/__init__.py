"""One module per subcommand; each reads: options -> one library call -> one writer."""
