"""The `chaos` executable: one thin module per subcommand, no model code.

Modules here import JAX, polars and the stages lazily, inside the command functions, so
`chaos --help` and tab completion stay instant.
"""
