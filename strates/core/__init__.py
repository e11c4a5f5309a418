"""What every stage shares: errors, configs, workspace and artifacts, topology.

`strates.core` imports no stage. Modules here import JAX lazily (only `topology` needs it,
and only when a mesh is built), so the CLI stays fast to start.
"""
