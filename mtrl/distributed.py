"""One program across several processes (hosts): `jax.distributed` with mtrl's run axis spanning every process's
devices.

``initialize()`` calls `jax.distributed.initialize` (on SLURM, or any cluster jax detects, with no arguments;
elsewhere with the coordinator's address, the number of processes and this process's id). On SLURM start one
task per GPU (``srun --ntasks-per-node=<GPUs per node> --gpus-per-node=<GPUs per node>``): jax's SLURM detection
gives each task the one GPU of its local rank, so one task per node would leave the node's other GPUs idle. After it,
`jax.devices()` lists every process's devices, so `mtrl.trainer.run_sharding` shards the runs over all of them
and each process steps its own shard of one SPMD program. Files are written once: the run directory's logs,
summaries and W&B by process 0 (`is_primary`), checkpoints by orbax's multi-process support (every process writes
its shards, process 0 the metadata). Results reach the host through `to_host`, which gathers the shards of every
process. On CPUs the processes talk through gloo.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
    """Join the distributed program (idempotent). With no arguments jax detects the cluster (SLURM, ...)."""
    if jax.distributed.is_initialized():
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU processes; no effect on accelerators
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
    # A misconfigured job (e.g. on SLURM one task per node, where jax gives each task only the GPU of its local
    # rank) shows here: fewer devices than the hosts have.
    print(f"mtrl: process {jax.process_index()} of {jax.process_count()}: {jax.local_device_count()} of the "
          f"program's {jax.device_count()} devices", flush=True)


def is_primary() -> bool:
    """Whether this process writes the run's files (process 0; always true in a single process)."""
    return jax.process_index() == 0


def to_host(tree: Any) -> Any:
    """``tree``'s arrays as numpy, gathered from every process when they span several (each process gets all)."""
    from jax.experimental import multihost_utils

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))

    return jax.tree.map(one, tree)


def from_host(tree: Any, sharding: jax.sharding.Sharding | None) -> Any:
    """``tree``'s host values (the same on every process, e.g. a checkpoint each process read) as arrays placed
    with ``sharding`` (spanning every process's devices; each process builds its own shards), or on the default
    device when it is None."""
    if sharding is None:
        return jax.tree.map(jax.numpy.asarray, tree)

    def one(x):
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(one, tree)


def barrier(name: str) -> None:
    """Wait for every process (no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def process_max(values: Sequence[int]) -> list[int]:
    """Elementwise maximum of ``values`` over every process; every process gets the same answer (``values`` in a
    single process). A decision that leads to a collective (a checkpoint save, leaving the loop) must be the same
    everywhere: a stop signal reaching one process first would otherwise leave the others waiting in the next
    chunk."""
    if jax.process_count() == 1:
        return [int(v) for v in values]
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(np.asarray(values, np.int32))  # [P, len(values)]
    return [int(v) for v in np.max(gathered, axis=0)]
