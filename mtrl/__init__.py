"""mtrl: multi-task and transfer deep Q-learning in JAX (distribution `mtrl-jax`)."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("mtrl-jax")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
