import os
import subprocess
import sys

import pytest

from mtrl import compilation_cache


def test_cache_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(compilation_cache.ENV_VAR, str(tmp_path / "c"))
    assert compilation_cache.cache_dir() == str(tmp_path / "c")
    monkeypatch.setenv(compilation_cache.ENV_VAR, "off")
    assert compilation_cache.cache_dir() is None
    monkeypatch.delenv(compilation_cache.ENV_VAR)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compilation_cache.cache_dir() == os.path.join(str(tmp_path / "xdg"), "mtrl", "xla")


def test_unwritable_cache_dir_warns_and_runs_uncached(monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv(compilation_cache.ENV_VAR, str(blocker / "cache"))  # a path under a regular file
    jax = compilation_cache.jax
    previous = jax.config.jax_compilation_cache_dir  # set if an earlier test in this process enabled it
    jax.config.update("jax_compilation_cache_dir", None)
    try:
        with pytest.warns(UserWarning, match="compilation cache disabled"):
            assert compilation_cache.enable() is None
        assert jax.config.jax_compilation_cache_dir is None
    finally:
        jax.config.update("jax_compilation_cache_dir", previous)


# Compiles once before enabling (jax then decides "no cache" for the process), enables, compiles a program,
# and prints whether the second process loaded it instead of compiling.
SCRIPT = """
import jax, jax.numpy as jnp
jax.random.key(0)  # a compile before enable()
from mtrl import compilation_cache
compilation_cache.MIN_COMPILE_SECONDS = 0.0
print("dir", compilation_cache.enable())
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
f = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T + 1.2345)
print("value", float(f(jnp.ones((3, 3))).sum()))
"""


@pytest.mark.parametrize("setting", ["dir", "off"])
def test_programs_are_cached_on_disk_after_an_earlier_compile(tmp_path, setting):
    cache = tmp_path / "cache"
    env = {**os.environ, compilation_cache.ENV_VAR: str(cache) if setting == "dir" else "off"}

    def run():
        proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    first = run()
    if setting == "off":
        assert "dir None" in first and not cache.exists()
        return
    assert f"dir {cache}" in first
    entries = sorted(os.listdir(cache))
    assert any(e.startswith("jit__lambda") for e in entries), entries
    assert run().splitlines()[1] == first.splitlines()[1]  # same value from the loaded executable
    assert sorted(os.listdir(cache)) == entries  # nothing new written: the second run was a cache hit
