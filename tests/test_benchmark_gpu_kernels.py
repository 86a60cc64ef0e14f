"""`benchmarks.gpu_kernels`: reading kernels per loop iteration out of optimized HLO text."""

import jax
import jax.numpy as jnp
import pytest

from benchmarks.gpu_kernels import count_kernels, innermost_loop, kernels_per_iteration, parse_hlo

HLO = """HloModule jit_chunk, entry_computation_layout={(f32[4]{0})->f32[4]{0}}

%learn (p.1: f32[4]) -> f32[4] {
  %p.1 = f32[4]{0} parameter(0)
  %f.1 = f32[4]{0} fusion(%p.1), kind=kLoop, calls=%fused_a
  %g.1 = f32[4]{0} fusion(%f.1), kind=kCustom, calls=%gemm, backend_config=GEMM
  ROOT %r.1 = f32[4]{0} fusion(%g.1), kind=kInput, calls=%fused_b
}

%skip (p.2: f32[4]) -> f32[4] {
  %p.2 = f32[4]{0} parameter(0)
  ROOT %s.2 = f32[4]{0} fusion(%p.2), kind=kLoop, calls=%fused_zero
}

%inner_body (t.1: (s32[], f32[4])) -> (s32[], f32[4]) {
  %t.1 = (s32[], f32[4]{0}) parameter(0)
  %i.1 = s32[] get-tuple-element(%t.1), index=0
  %x.1 = f32[4]{0} get-tuple-element(%t.1), index=1
  %pred.1 = pred[] fusion(%i.1), kind=kLoop, calls=%fused_pred
  %c.1 = f32[4]{0} conditional(%pred.1, %x.1, %x.1), true_computation=%learn, false_computation=%skip
  %y.0 = ((f32[4]{0}), f32[4]{0}) fusion-start(%c.1), kind=kLoop, calls=%fused_update
  %y.1 = f32[4]{0} fusion-done(%y.0)
  %k.1 = f32[4]{0} custom-call(%y.1), custom_call_target="__cublas$lt$matmul"
  ROOT %out.1 = (s32[], f32[4]{0}) tuple(%i.1, %k.1)
}

%inner_cond (t.2: (s32[], f32[4])) -> pred[] {
  %t.2 = (s32[], f32[4]{0}) parameter(0)
  ROOT %lt.1 = pred[] fusion(%t.2), kind=kLoop, calls=%fused_lt
}

%outer_body (t.3: (s32[], f32[4])) -> (s32[], f32[4]) {
  %t.3 = (s32[], f32[4]{0}) parameter(0)
  %w.1 = (s32[], f32[4]{0}) while(%t.3), condition=%inner_cond, body=%inner_body, backend_config=TRIP100
  ROOT %z.1 = (s32[], f32[4]{0}) fusion(%w.1), kind=kLoop, calls=%fused_sum
}

%outer_cond (t.4: (s32[], f32[4])) -> pred[] {
  %t.4 = (s32[], f32[4]{0}) parameter(0)
  ROOT %lt.2 = pred[] fusion(%t.4), kind=kLoop, calls=%fused_lt2
}

ENTRY %main (x.0: f32[4]) -> f32[4] {
  %x.0 = f32[4]{0} parameter(0)
  %init = (s32[], f32[4]{0}) tuple(%x.0, %x.0)
  %w.0 = (s32[], f32[4]{0}) while(%init), condition=%outer_cond, body=%outer_body, backend_config=TRIP10
  ROOT %res = f32[4]{0} get-tuple-element(%w.0), index=1
}
""".replace("GEMM", '{"fusion_backend_config":{"kind":"__triton_nested_gemm_fusion"}}').replace(
    "TRIP100", '{"known_trip_count":{"n":"100"}}').replace("TRIP10", '{"known_trip_count":{"n":"10"}}')


def test_the_innermost_loop_is_found_and_a_learning_iteration_counted_with_its_larger_branch():
    """The inner loop's body: a predicate fusion, the conditional (learn: 3 kernels, skip: 1; the larger counts),
    an async fusion (its start counts, its done does not) and a cuBLAS call; its condition one fusion. The outer
    loop's body holds the inner loop as one item."""
    computations, entry = parse_hlo(HLO)
    assert entry == "main" and innermost_loop(computations, entry) == ("inner_body", "inner_cond", 100)
    counts = count_kernels(computations, "inner_body")
    assert counts == {"fusion:kLoop": 2, "fusion:kCustom:__triton_nested_gemm_fusion": 1, "fusion:kInput": 1,
                      "conditional": 1, "fusion-start": 1, "custom-call:__cublas$lt$matmul": 1}  # -done only waits
    result = kernels_per_iteration(HLO, iterations=100)
    assert (result["kernels"], result["body"], result["condition"], result["trip_count"]) == (8, 7, 1, 100)
    with pytest.raises(ValueError, match="runs 100 times, not the 10 training iterations"):
        kernels_per_iteration(HLO, iterations=10)  # e.g. a loop inside the env step found instead
    assert count_kernels(computations, "outer_body") == {"while": 1, "fusion:kLoop": 1}  # nested loops count once


def test_text_without_an_entry_or_a_loop_is_refused():
    with pytest.raises(ValueError, match="no ENTRY"):
        parse_hlo("%f (p: f32[]) -> f32[] {\n  ROOT %p = f32[] parameter(0)\n}\n")
    no_loop = jax.jit(lambda x: x * 2).lower(jnp.ones(3)).compile().as_text()
    with pytest.raises(ValueError, match="no while loop"):
        kernels_per_iteration(no_loop)


def test_a_compiled_loop_with_a_conditional_is_read_from_real_optimized_hlo():
    """On this machine's backend (CPU): the scan's body is found and its conditional counted once."""
    def step(x, i):
        x = jax.lax.cond(i % 2 == 0, lambda v: jnp.sin(v) @ v, lambda v: v, x)
        return x * 1.5, None

    hlo = jax.jit(lambda x: jax.lax.scan(step, x, jnp.arange(7))[0]).lower(jnp.ones((4, 4))).compile().as_text()
    result = kernels_per_iteration(hlo)
    assert result["by_kind"].get("conditional") == 1 and result["kernels"] >= 2
