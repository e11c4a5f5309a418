"""strates: the library behind the `chaos` command.

`strates.core` holds what every stage shares (errors, configs, the workspace and its
artifacts, device topologies); `strates.data` ingests and validates bars; each later
stage gets a package of its own. Dependencies flow one way: chaos_cli -> strates -> kernels.
"""

from importlib import metadata as _metadata

# The name on PyPI (`chaos` there is an unrelated project); the command is still `chaos`.
DISTRIBUTION = "chaos-strates"

try:
    __version__ = _metadata.version(DISTRIBUTION)
except _metadata.PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
