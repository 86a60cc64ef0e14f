"""The run axis sharded over 4 (fake CPU) devices gives the same results as one device, also through a
checkpoint save and restore between chunks (the restored state keeps its sharding).

Sharded runs use jax's default threefry keys (see `mtrl.trainer.PRNG_IMPL`), so the one-device run is pinned to
threefry too for the comparison."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

from tests.conftest import TEST_XLA_FLAGS

SCRIPT = textwrap.dedent(
    """
    import sys, jax, numpy as np
    import mtrl.trainer
    if sys.argv[2] == "threefry":
        mtrl.trainer.PRNG_IMPL = None
    from mtrl.config import DQNConfig
    from mtrl.trainer import Trainer
    cfg = DQNConfig(total_steps=256, num_envs=4, buffer_size=64, batch_size=8, learning_starts=16,
                    target_update_period=4, torso=(16,), eval_every=128, eval_episodes=2)
    trainer = Trainer.create(["CartPole-v1", "Acrobot-v1"], cfg)
    state = trainer.init([0, 1, 2, 3])
    print("devices", len(state.runs.obs.sharding.device_set))
    chunk = trainer.make_train_chunk()
    state, _ = chunk(state)
    from mtrl.checkpoint import Checkpointer
    ckpt = Checkpointer(sys.argv[1] + ".ckpt")
    ckpt.save(128, state, {})
    saved = jax.device_get(state.runs.train.params)
    state, _ = ckpt.restore(trainer.init([0, 1, 2, 3]))
    ckpt.close()
    print("devices_restored", len(state.runs.obs.sharding.device_set))
    abstract = trainer.init_shapes([0, 1, 2, 3], placed=False)  # a policy's read: the params alone, one device
    part = Checkpointer(sys.argv[1] + ".ckpt", read_only=True).restore_parts(
        {"runs.train.params": abstract.runs.train.params})["runs.train.params"]
    import chex
    chex.assert_trees_all_equal(jax.device_get(part), saved)
    print("parts_equal", True)
    state, _ = chunk(state)
    returns = trainer.make_evaluate()(state)
    print("devices_after", len(state.runs.obs.sharding.device_set))
    np.save(sys.argv[1], np.asarray(state.runs.train.params["torso"]["Dense_0"]["kernel"]))
    """
)


def _run(tmp_path, devices, keys="threefry"):
    out = tmp_path / f"kernel_{devices}_{keys}.npy"
    flags = f"--xla_force_host_platform_device_count={devices} {TEST_XLA_FLAGS}"
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(out), keys], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, np.load(out)


def test_sharded_runs_match_single_device(tmp_path):
    out4, kernel4 = _run(tmp_path, 4)
    out1, kernel1 = _run(tmp_path, 1)
    assert "devices 4" in out4 and "devices_restored 4" in out4 and "devices_after 4" in out4
    assert "parts_equal True" in out4 and "parts_equal True" in out1
    assert "devices 1" in out1
    np.testing.assert_allclose(kernel4, kernel1, rtol=1e-5, atol=1e-6)


def test_sharded_runs_fall_back_from_philox(tmp_path):
    out, kernel = _run(tmp_path, 4, keys="default")  # would fail to compile if Philox keys were sharded
    assert "devices_after 4" in out and np.all(np.isfinite(kernel))


def test_a_run_sharded_over_four_devices_evaluates_on_one(tmp_path):
    """A run trained sharded over 4 devices (threefry keys) evaluated in a one-device process (where runs use
    Philox keys): `evaluate` reads the run's own keys and reproduces its logged evaluation; the policy loads."""
    args = [sys.executable, "-m", "mtrl", "train", "--tasks", "CartPole-v1", "--seeds", "4", "--total-steps", "256",
            "--num-envs", "4", "--buffer-size", "64", "--batch-size", "8", "--learning-starts", "16", "--torso", "16",
            "--eval-every", "128", "--eval-episodes", "2", "--no-progress", "--run-dir", str(tmp_path / "run")]
    four = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count=4 {TEST_XLA_FLAGS}"}
    subprocess.run(args, env=four, check=True, capture_output=True)
    script = ("import json, sys; from mtrl.policy import evaluate_run, load_policy; "
              "r = evaluate_run(sys.argv[1], write=False); load_policy(sys.argv[1], seed=3); "
              "print(json.dumps({t: v['per_seed'] for t, v in r['tasks'].items()}))")
    one = {**os.environ, "XLA_FLAGS": TEST_XLA_FLAGS}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], env=one, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    per_seed = json.loads(proc.stdout.splitlines()[-1])["CartPole-v1"]
    rows = [line.split(",") for line in (tmp_path / "run" / "eval.csv").read_text().splitlines()[1:]]
    logged = [float(r[3]) for r in rows if r[0] == "256"]
    np.testing.assert_allclose(per_seed, logged, rtol=1e-6)


RESUME_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import jax
    from mtrl.checkpoint import Checkpointer
    from mtrl.config import DQNConfig
    from mtrl.trainer import train
    cfg = DQNConfig(total_steps=512, num_envs=4, buffer_size=64, batch_size=8, learning_starts=16,
                    target_update_period=4, torso=(16,), eval_every=128, eval_episodes=2)
    out = {}
    for name, stop in json.loads(sys.argv[1]):  # [run dir, stop_at_step or None (resume it when null and present)]
        resume = stop is None and os.path.exists(name)
        train(["CartPole-v1"], cfg, seeds=[0, 1, 2, 3], run_dir=name, progress=False,
              resume=resume, stop_at_step=stop)
        ckpt = Checkpointer(name, read_only=True)
        params = ckpt.restore_untyped(paths=["runs.train.params"])["runs"]["train"]["params"]
        out[name] = {"impl": ckpt.key_impl(), "step": ckpt.latest_step(),
                     "kernel": jax.device_get(params["torso"]["Dense_0"]["kernel"]).tolist()}
        ckpt.close()
    print(json.dumps(out))
    """
)


def _layout(devices: int, runs: list) -> dict:
    """Train / stop / resume ``runs`` (`RESUME_SCRIPT`) in one process with ``devices`` CPU devices."""
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices} {TEST_XLA_FLAGS}",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", RESUME_SCRIPT, json.dumps(runs)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {**json.loads(proc.stdout.splitlines()[-1]), "stdout": proc.stdout}


def test_a_run_resumes_on_another_device_layout_with_its_own_keys(tmp_path):
    """A run keeps its key implementation when resumed on another device layout (the checkpoint records it): one
    trained on one device (Philox keys) continues in a 4-device process on one of its devices, bit-identical to the
    run never stopped; one trained sharded over 4 devices (threefry) continues on one device and ends where the
    uninterrupted sharded run does (to float tolerance: sharded arithmetic)."""
    d = {k: str(tmp_path / k) for k in ("one", "one_stopped", "four", "four_stopped")}
    four = _layout(4, [[d["four"], None], [d["four_stopped"], 256]])
    one = _layout(1, [[d["one"], None], [d["one_stopped"], 256], [d["four_stopped"], None]])
    resumed_on_four = _layout(4, [[d["one_stopped"], None], [d["one"], None]])  # the second: already complete
    assert four[d["four_stopped"]]["step"] == 256 and one[d["one_stopped"]]["step"] == 256
    assert four[d["four"]]["impl"] == "threefry2x32" and one[d["one"]]["impl"] == mtrl_prng_impl()
    assert resumed_on_four["stdout"].count("continue on one of the 4 devices") == 1  # not for the finished run
    assert f"{d['one']} is complete" in resumed_on_four["stdout"]
    assert resumed_on_four[d["one_stopped"]]["impl"] == one[d["one"]]["impl"]
    assert resumed_on_four[d["one_stopped"]]["step"] == 512
    np.testing.assert_array_equal(resumed_on_four[d["one_stopped"]]["kernel"], one[d["one"]]["kernel"])
    assert one[d["four_stopped"]]["impl"] == "threefry2x32" and one[d["four_stopped"]]["step"] == 512
    np.testing.assert_allclose(one[d["four_stopped"]]["kernel"], four[d["four"]]["kernel"], rtol=1e-5, atol=1e-6)


def mtrl_prng_impl() -> str:
    from mtrl.trainer import PRNG_IMPL

    return PRNG_IMPL


def _free_port(candidates=None) -> int:
    """A free local TCP port: any (the OS picks), or the first free one of ``candidates``."""
    import socket

    for port in candidates or [0]:
        with socket.socket() as s:
            try:
                s.bind(("localhost", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError(f"no free port among {len(candidates)} candidates")


def _two_processes(command, env, only_process_1=()):
    """Run ``command`` as processes 0 and 1 of one `--distributed` program (coordinator on localhost); outputs."""
    cluster = ["--distributed", "--coordinator", f"localhost:{_free_port()}", "--num-processes", "2"]
    procs = [subprocess.Popen([*command, *cluster, "--process-id", str(i), *(only_process_1 if i else ())],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in (1, 0)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    return outputs


def test_a_sweep_across_two_processes_equals_the_sweep_in_one_process_with_two_devices(tmp_path):
    """`mtrl sweep --distributed`: the grid's runs (2 settings x 2 seeds) span both processes' devices in one
    program; process 0 writes the sweep, whose sweep.json and per-setting eval.csv equal one process's with two
    devices."""
    args = [sys.executable, "-m", "mtrl", "sweep", "--tasks", "CartPole-v1", "--grid", "lr=5e-4,1e-3", "--seeds", "2",
            "--total-steps", "256", "--num-envs", "4", "--buffer-size", "64", "--batch-size", "8",
            "--learning-starts", "16", "--torso", "16", "--eval-every", "128", "--eval-episodes", "2", "--no-progress"]
    env = {**os.environ, "XLA_FLAGS": TEST_XLA_FLAGS}
    _two_processes([*args, "--run-dir", str(tmp_path / "two")], env)
    single = {**env, "XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {TEST_XLA_FLAGS}"}
    subprocess.run([*args, "--run-dir", str(tmp_path / "one")], env=single, check=True, capture_output=True)
    two, one = (json.loads((tmp_path / d / "sweep.json").read_text()) for d in ("two", "one"))
    assert two["settings"] == one["settings"] and two["best"] == one["best"] and two["programs"] == 1
    for label in ("lr=0.0005", "lr=0.001"):
        two_curve, one_curve = ((tmp_path / d / label / "eval.csv").read_text() for d in ("two", "one"))
        assert two_curve == one_curve and len(two_curve.splitlines()) == 1 + 3 * 2  # 3 evaluations x 2 seeds
    assert sorted(os.listdir(tmp_path / "two")) == sorted(os.listdir(tmp_path / "one"))


def test_two_processes_with_jax_distributed_equal_one_process_with_two_devices(tmp_path):
    """`mtrl train --distributed`: two local CPU processes (coordinator on localhost), one device each, shard the
    runs of one program; process 0 writes the run directory, which equals a single process's with two devices.
    A stop asked of one process only (here --stop-at-step; a signal alike) stops both at the same chunk with one
    checkpoint, and `--resume --distributed` finishes the run to the same files."""
    args = [sys.executable, "-m", "mtrl", "train", "--tasks", "CartPole-v1", "--seeds", "2",
            "--total-steps", "256", "--num-envs", "4", "--buffer-size", "64", "--batch-size", "8",
            "--learning-starts", "16", "--torso", "16", "--eval-every", "128", "--eval-episodes", "2", "--no-progress"]
    env = {**os.environ, "XLA_FLAGS": TEST_XLA_FLAGS}

    def two_processes(command, only_process_1=()):
        return _two_processes(command, env, only_process_1)

    run_dir = tmp_path / "two"
    outputs = two_processes([*args, "--run-dir", str(run_dir)], only_process_1=["--stop-at-step", "128"])
    assert all("stopped by --stop-at-step at 128" in out for out in outputs), outputs
    assert os.listdir(run_dir / "checkpoints") == ["128"]
    two_processes([sys.executable, "-m", "mtrl", "train", "--resume", str(run_dir), "--no-progress"])
    single = {**env, "XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {TEST_XLA_FLAGS}"}
    subprocess.run([*args, "--run-dir", str(tmp_path / "one")], env=single, check=True, capture_output=True)
    two, one = (run_dir / "eval.csv").read_text(), (tmp_path / "one" / "eval.csv").read_text()
    assert two == one and len(two.splitlines()) == 1 + 3 * 2  # header + 3 evaluations x 2 seeds
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["128", "256"]  # written once, by every process's shards


def test_a_transfer_across_two_processes_equals_one_process_with_two_devices(tmp_path):
    """`mtrl transfer --distributed` (l2sp: spliced torso and anchor): each process reads the source run and places
    its runs' shards of the spliced parameters; the run equals one process's with two devices (where the source,
    read onto one device, had also to be placed as the sharded target runs are)."""
    tiny = ["--total-steps", "256", "--num-envs", "4", "--buffer-size", "64", "--batch-size", "8",
            "--learning-starts", "16", "--torso", "16", "--eval-every", "128", "--eval-episodes", "2", "--no-progress"]
    env = {**os.environ, "XLA_FLAGS": TEST_XLA_FLAGS}
    subprocess.run([sys.executable, "-m", "mtrl", "train", "--tasks", "CartPole-v1:length=0.5", "--seeds", "2", *tiny,
                    "--run-dir", str(tmp_path / "source")], env=env, check=True, capture_output=True)
    args = [sys.executable, "-m", "mtrl", "transfer", "--source", str(tmp_path / "source"), "--tasks", "CartPole-v1",
            "--mode", "l2sp", "--l2sp-alpha", "0.1", "--seeds", "2", *tiny]
    _two_processes([*args, "--run-dir", str(tmp_path / "two")], env)
    single = {**env, "XLA_FLAGS": f"--xla_force_host_platform_device_count=2 {TEST_XLA_FLAGS}"}
    proc = subprocess.run([*args, "--run-dir", str(tmp_path / "one")], env=single, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two, one = ((tmp_path / d / "eval.csv").read_text() for d in ("two", "one"))
    assert two == one and len(two.splitlines()) == 1 + 3 * 2  # header + 3 evaluations x 2 seeds
    assert json.loads((tmp_path / "two" / "config.json").read_text())["transfer"]["settings"]["mode"] == "l2sp"


def test_on_slurm_the_processes_find_each_other_from_slurms_variables(tmp_path):
    """`mtrl.distributed.initialize()` with no arguments, under SLURM's variables (two tasks, one per node, as
    `srun` sets them; the coordinator's port comes from the job id): both processes join one program and say how
    many of its devices each holds."""
    first = 65535 - 2**12 + 1  # jax takes the coordinator's port from the job id, in [first, 65535]
    port = _free_port(range(first, 65536))
    code = "from mtrl.distributed import initialize; initialize()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    slurm = {"SLURM_JOB_ID": str(port - first), "SLURM_STEP_NODELIST": "localhost",
             "SLURM_NTASKS": "2", "SLURM_LOCALID": "0", "JAX_PLATFORMS": "cpu"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env={**env, **slurm, "SLURM_PROCID": str(i)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in (1, 0)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    for i, out in zip((1, 0), outputs):
        assert f"mtrl: process {i} of 2: 1 of the program's 2 devices" in out, out
