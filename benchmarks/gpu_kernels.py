"""GPU kernels per training iteration: mtrl's CartPole program vs PureJaxRL's, counted in XLA's optimized HLO.

    python -m benchmarks.gpu_kernels [--target-config SPEC.txtpb] [--save-target-config FILE] [--out DIR]

On a small network a GPU iteration is a few dozen tiny kernels, so the number of kernels per iteration, not FLOPs,
sets the speed; this counts them. Both programs (`benchmarks.throughput.PUREJAXRL`'s configuration; every
iteration learns) are compiled for a GPU and the optimized HLO is read: in the innermost `while` loop (one
iteration) every instruction that launches work counts once; of a `conditional` (learn or not, copy the target
or not) the larger branch counts, the one a learning iteration takes. Writes ``gpu_kernels.{json,md}`` in
``--out``.

Where the GPU comes from:

- on a machine with a GPU and a CUDA jax: that GPU (``--save-target-config FILE`` also writes its XLA target
  description, for the case below);
- on a CPU-only machine: ``--target-config SPEC`` compiles *deviceless* for the GPU SPEC describes (a
  `GpuTargetConfigProto` in text form: XLA keeps them for common cards under
  ``xla/backends/gpu/target_config/specs/``, e.g. ``h100_sxm.txtpb``, or save one from a GPU as above). This needs
  jax's CUDA plugin (``pip install jax-cuda12-plugin==<jax version> jax-cuda12-pjrt==<jax version>``; no driver,
  no CUDA libraries) and a jax whose plugin reads the spec's format (0.11 or newer with XLA's current specs).
  Deviceless compiles do not autotune, so GEMM kernels are XLA's defaults (Triton GEMM fusions where a tuned GPU
  compile may pick cuBLAS: about one kernel per GEMM either way); the fusion of everything else follows the same
  cost model as on the card. Compare programs compiled the same way.

Why hand-written: XLA reports no kernel count per loop iteration, and the profiler needs the GPU; the optimized
HLO text is stable enough to read (computations, ``while`` bodies, ``conditional`` branches).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import re
import time

# Launch nothing at run time: aliasing and bookkeeping only.
FREE_OPCODES = frozenset({"parameter", "get-tuple-element", "tuple", "constant", "bitcast", "after-all",
                          "opt-barrier", "partition-id", "replica-id", "add-dependency"})
_COMPUTATION = re.compile(r"^(ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*.+?\s([a-z][a-z0-9\-]*)\(")


def parse_hlo(text: str) -> tuple[dict[str, list[tuple[str, str]]], str]:
    """``({computation: [(opcode, instruction line)]}, entry computation name)`` of an HLO module's text."""
    computations: dict[str, list[tuple[str, str]]] = {}
    current, entry = None, None
    for line in text.splitlines():
        if current is None:
            match = _COMPUTATION.match(line)
            if match and "=" not in line.split("(")[0]:
                current = match.group(2)
                computations[current] = []
                entry = current if match.group(1) else entry
        elif line.strip() == "}":
            current = None
        else:
            match = _INSTRUCTION.match(line)
            if match:
                computations[current].append((match.group(2), line))
    if entry is None:
        raise ValueError("no ENTRY computation in the HLO text")
    return computations, entry


def _label(opcode: str, line: str) -> str:
    if opcode == "fusion":
        kind = re.search(r"kind=(k\w+)", line)
        backend = re.search(r'"kind":"([^"]+)"', line)  # e.g. __triton_nested_gemm_fusion
        return "fusion:" + (kind.group(1) if kind else "?") + (f":{backend.group(1)}" if backend else "")
    if opcode == "custom-call":
        target = re.search(r'custom_call_target="([^"]+)"', line)
        return "custom-call:" + (target.group(1) if target else "?")
    return opcode


def _callees(line: str, *attributes: str) -> list[str]:
    names = []
    for attribute in attributes:
        if f"{attribute}={{" in line:
            names += re.findall(r"%?([\w.\-]+)", line.split(f"{attribute}={{", 1)[1].split("}", 1)[0])
        else:
            names += re.findall(rf"{attribute}=%?([\w.\-]+)", line)
    return names


def count_kernels(computations: dict, name: str) -> collections.Counter:
    """Kernel-launching instructions of one execution of computation ``name``, by label: `call`s are followed, a
    `conditional` adds its largest branch (and counts itself once: the predicate read), a nested `while` counts
    as one."""
    counts: collections.Counter = collections.Counter()
    for opcode, line in computations[name]:
        if opcode in FREE_OPCODES or opcode.endswith("-done"):  # an async pair's -done only waits for its -start
            continue
        if opcode == "call":
            for callee in _callees(line, "to_apply"):
                counts.update(count_kernels(computations, callee))
        elif opcode == "conditional":
            branches = [count_kernels(computations, b) for b in
                        _callees(line, "true_computation", "false_computation", "branch_computations")]
            counts["conditional"] += 1
            counts.update(max(branches, key=lambda c: sum(c.values()), default=collections.Counter()))
        else:
            counts[_label(opcode, line)] += 1
    return counts


def innermost_loop(computations: dict, entry: str) -> tuple[str, str, int | None]:
    """``(body, condition, trip count or None)`` of the deepest `while` reachable from ``entry`` (the first one
    found at that depth)."""
    best: tuple[int, str, str, int | None] | None = None

    def visit(name: str, depth: int) -> None:
        nonlocal best
        for opcode, line in computations[name]:
            if opcode == "while":
                body, = _callees(line, "body")
                condition, = _callees(line, "condition")
                trip = re.search(r'"known_trip_count":\{"n":"(\d+)"\}', line)
                if best is None or depth + 1 > best[0]:
                    best = (depth + 1, body, condition, int(trip.group(1)) if trip else None)
                visit(body, depth + 1)
            elif opcode in ("call", "conditional"):
                for callee in _callees(line, "to_apply", "true_computation", "false_computation",
                                       "branch_computations"):
                    if callee in computations:
                        visit(callee, depth)

    visit(entry, 0)
    if best is None:
        raise ValueError("the program has no while loop")
    return best[1], best[2], best[3]


def kernels_per_iteration(hlo_text: str, iterations: int | None = None) -> dict:
    """``{"kernels", "body", "condition", "by_kind", "trip_count"}`` of the innermost loop of an optimized HLO
    module. ``iterations``: the training iterations that loop should run; a known trip count that differs (a loop
    inside one iteration, say) raises ValueError rather than counting the wrong loop."""
    computations, entry = parse_hlo(hlo_text)
    body, condition, trip = innermost_loop(computations, entry)
    if iterations is not None and trip is not None and trip != iterations:
        raise ValueError(f"the innermost loop runs {trip} times, not the {iterations} training iterations expected: "
                         "it is not the training loop")
    in_body, in_condition = count_kernels(computations, body), count_kernels(computations, condition)
    return {"kernels": sum(in_body.values()) + sum(in_condition.values()), "body": sum(in_body.values()),
            "condition": sum(in_condition.values()), "by_kind": dict(sorted(in_body.items())), "trip_count": trip}


def _target(target_config: str | None):
    """(sharding to compile for, device description): deviceless from ``target_config``, else the first GPU."""
    import jax
    from jax.experimental import topologies

    if target_config is None:
        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if not gpus:
            raise SystemExit("no GPU here: pass --target-config SPEC.txtpb to compile deviceless (see --help)")
        return jax.sharding.SingleDeviceSharding(gpus[0]), f"{gpus[0].device_kind} (compiled on the card)"
    with open(target_config) as f:
        topology = topologies.get_topology_desc(platform="cuda", target_config=f.read(), topology="1x1x1")
    mesh = topologies.make_mesh(topology, (1,), ("run",))
    device = topology.devices[0].device_kind
    return (jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()),
            f"{device} (deviceless compile from {os.path.basename(target_config)}; no autotuning)")


def _abstract(tree, sharding):
    """Shapes and dtypes of ``tree`` placed on ``sharding`` (Python scalars get jax's default dtypes)."""
    import jax

    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jax.numpy.shape(x), jax.numpy.result_type(x),
                                                       sharding=sharding), tree)


def programs_hlo(sharding, iterations: int = 1000) -> dict[str, tuple[str, int]]:
    """Optimized HLO of mtrl's train chunk and PureJaxRL's chunk at `benchmarks.throughput.PUREJAXRL`, each with
    the iterations of its innermost training loop (mtrl's: one logging window)."""
    import jax

    from benchmarks.throughput import LOG_EVERY, PUREJAXRL, learning_programs
    from mtrl.trainer import log_iterations, window_sizes

    trainer, chunk, (init, peer_chunk) = learning_programs(PUREJAXRL, iterations)
    windows = set(window_sizes(iterations, log_iterations(LOG_EVERY, PUREJAXRL)))
    if len(windows) != 1:
        raise ValueError(f"the chunk's logging windows differ in length ({windows}): choose iterations they divide")
    hlo = {"mtrl": (chunk.lower(_abstract(trainer.init([0]), sharding)).compile().as_text(), windows.pop())}
    runner = jax.jit(lambda state: peer_chunk(state, iterations))
    hlo["purejaxrl"] = (runner.lower(_abstract(init(0), sharding)).compile().as_text(), iterations)
    return hlo


def render_markdown(results: dict) -> str:
    counts = results["programs"]
    kinds = sorted(set(counts["mtrl"]["by_kind"]) | set(counts["purejaxrl"]["by_kind"]))
    rows = [f"| {kind} | {counts['mtrl']['by_kind'].get(kind, 0)} | {counts['purejaxrl']['by_kind'].get(kind, 0)} |"
            for kind in kinds]
    from benchmarks.throughput import comparison_config_text
    from mtrl.logger import host_description

    machine = results["machine"]
    return "\n".join([
        "# GPU kernels per training iteration (CartPole, PureJaxRL's configuration)", "",
        f"- command: `python -m benchmarks.gpu_kernels {results['arguments']}`",
        f"- compiled for: {results['device']}"
        + (f" (spec sha256 {results['target_config_sha256'][:12]}…)" if results.get("target_config_sha256") else ""),
        f"- host: {host_description(machine)}; jax {machine['versions']['jax']}; {results['date']}",
        *(["- spec: XLA's `xla/backends/gpu/target_config/specs/` file of that name, or one saved from a card with "
           "`--save-target-config`"] if results.get("target_config_sha256") else []), "",
        f"mtrl **{counts['mtrl']['kernels']}** kernels per learning iteration, PureJaxRL's program "
        f"**{counts['purejaxrl']['kernels']}** (loop body + loop condition; of each conditional, the branch a "
        "learning iteration takes). Kernels outside that loop (mtrl's logging window every ~100 iterations, "
        "PureJaxRL's chunk) are not counted.", "",
        *([comparison_config_text(results["comparison_config"]) + ".", ""] if "comparison_config" in results else []),
        "| in the loop body | mtrl | PureJaxRL |", "|---|---|---|", *rows,
        f"| loop condition | {counts['mtrl']['condition']} | {counts['purejaxrl']['condition']} |", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target-config", default=None,
                        help="GpuTargetConfigProto text file: compile deviceless for that GPU (default: this GPU)")
    parser.add_argument("--save-target-config", default=None,
                        help="(on a GPU) also write its target description here")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    if args.target_config is not None and args.save_target_config is not None:
        parser.error("--save-target-config describes the GPU this runs on; with --target-config there is none")
    if args.target_config is not None:
        os.environ["JAX_PLATFORMS"] = "cpu"  # no CUDA client: the plugin only compiles
        os.environ["MTRL_COMPILATION_CACHE"] = "off"  # and without a client it cannot load cached executables
    import jax

    from benchmarks.throughput import comparison_config, write_results
    from mtrl.logger import environment_info

    sharding, device = _target(args.target_config)
    if args.save_target_config:
        from jax._src.lib import xla_client

        os.makedirs(os.path.dirname(os.path.abspath(args.save_target_config)), exist_ok=True)
        with open(args.save_target_config, "w") as f:
            f.write(str(xla_client.get_topology_for_devices(jax.devices()).target_config))
    hlo = programs_hlo(sharding)
    # The spec by name (XLA's specs/ file of that name, or one saved from a card) and content hash, not by path.
    shown = [] if args.target_config is None else ["--target-config", os.path.basename(args.target_config)]
    spec_sha256 = None
    if args.target_config is not None:
        with open(args.target_config, "rb") as f:
            spec_sha256 = hashlib.sha256(f.read()).hexdigest()
    results = {"machine": environment_info(), "date": time.strftime("%Y-%m-%d"), "device": device,
               "target_config_sha256": spec_sha256,
               "arguments": " ".join(shown + (["--out", args.out] if args.out != "benchmarks/results" else [])),
               "comparison_config": comparison_config(),
               "programs": {name: kernels_per_iteration(text, n) for name, (text, n) in hlo.items()}}
    write_results(args.out, "gpu_kernels", results, render_markdown)


if __name__ == "__main__":
    main()
