"""Persistent compilation cache: a rerun of the same program loads its compiled executable from disk.

Compiling the training chunk is most of a short run's wall time on a CPU (3-5 s here against seconds of
training), and sweeps, resumed runs, studies and the test suite compile the same programs again and again. JAX's
own persistent cache does the work (keyed on the lowered program, the compile options, the XLA flags, the jax
version and the device); this module only picks the directory and turns it on once per process.

Where: ``$MTRL_COMPILATION_CACHE`` if set (``off`` disables it), else ``$XDG_CACHE_HOME/mtrl/xla`` (default
``~/.cache/mtrl/xla``). A cache directory the user configured in jax itself wins. The cache changes no result:
a loaded executable is the one that would have been compiled.
"""

from __future__ import annotations

import os
import warnings

import jax
from jax.experimental.compilation_cache import compilation_cache as jax_cache

ENV_VAR = "MTRL_COMPILATION_CACHE"
# Programs that compile faster than this are not written (init and evaluation at a low optimisation level).
MIN_COMPILE_SECONDS = 0.5


def cache_dir() -> str | None:
    """The directory mtrl caches compiled programs in, or None when ``$MTRL_COMPILATION_CACHE=off``."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured.lower() in ("off", "0", "false", "none"):
        return None
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mtrl", "xla")


def enable() -> str | None:
    """Turn jax's persistent compilation cache on at `cache_dir()` (idempotent); returns the directory in use
    (the user's own jax setting if there is one), or None when disabled."""
    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    path = cache_dir()
    if path is None:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:  # read-only home, full disk: run uncached rather than fail
        warnings.warn(f"mtrl: compilation cache disabled, cannot create {path}: {err}", stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    # jax decides once per process, at its first compile, whether a cache is in use; anything compiled before
    # this call (a `jax.random.key`, say) has already decided "no". Resetting makes it look again.
    jax_cache.reset_cache()
    return path
