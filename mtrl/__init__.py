"""mtrl: multi-task and transfer deep Q-learning in JAX (distribution `mtrl-jax`).

Most of the public API is importable from here (`mtrl.DQNConfig`, `mtrl.train_transfer`, `mtrl.transfer_study`,
`mtrl.load_policy`, `mtrl.evaluate_run`, `mtrl.TransferConfig`); each name is imported on first use, so
`import mtrl` does not load jax. `train` lives in `mtrl.train` (`from mtrl.train import train`): the package
attribute `mtrl.train` is that module.
"""

from importlib import import_module as _import_module
from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("mtrl-jax")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_API = {
    "DQNConfig": "mtrl.config",
    "TransferConfig": "mtrl.transfer",
    "train_transfer": "mtrl.transfer",
    "transfer_study": "mtrl.study",
    "load_policy": "mtrl.policy",
    "evaluate_run": "mtrl.policy",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        return getattr(_import_module(_API[name]), name)
    raise AttributeError(f"module 'mtrl' has no attribute {name!r}")
