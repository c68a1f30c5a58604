"""The `abaw` subcommands, one module each: `add_subcommand(subparsers)` adds its parser and sets `func` to its
`run(args)`. `abaw --help` imports every one of them, so they import their implementation inside `run`."""
