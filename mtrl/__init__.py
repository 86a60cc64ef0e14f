"""mtrl: multi-task and transfer deep Q-learning in JAX (distribution `mtrl-jax`).

The public API is importable from here (`mtrl.train`, `mtrl.DQNConfig`, `mtrl.CheckpointOptions`,
`mtrl.train_transfer`, `mtrl.TransferConfig`, `mtrl.transfer_study`, `mtrl.sweep`, `mtrl.load_policy`,
`mtrl.evaluate_run`, `mtrl.save_gif`, `mtrl.compare_runs`, `mtrl.make_taskset`, `mtrl.suite`); each name is
imported on first use, so `import mtrl` does not load jax.
"""

from importlib import import_module as _import_module
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("mtrl-jax")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_API = {
    "train": "mtrl.trainer",
    "CheckpointOptions": "mtrl.trainer",
    "DQNConfig": "mtrl.config",
    "TransferConfig": "mtrl.transfer_config",
    "train_transfer": "mtrl.transfer",
    "transfer_study": "mtrl.study",
    "sweep": "mtrl.sweeps",
    "load_policy": "mtrl.policy",
    "evaluate_run": "mtrl.policy",
    "save_gif": "mtrl.render",
    "compare_runs": "mtrl.compare",
    "make_taskset": "mtrl.tasks",
    "suite": "mtrl.tasks",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(_import_module(_API[name]), name)
    raise AttributeError(f"module 'mtrl' has no attribute {name!r}")
