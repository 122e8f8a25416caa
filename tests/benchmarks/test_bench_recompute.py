"""benchmarks/bench_recompute.py runs both modes in fresh processes and reports their ratio."""
from __future__ import annotations

from .scripts import load_script


def test_both_modes_measured_and_compared():
    bench = load_script("bench_recompute")
    results = bench.run("resnet18", [96, 48], batch=4, steps=1, device="cpu")
    assert set(results) == {"kept", "recomputed"}
    for r in results.values():
        assert r["peak_bytes"] > 100 * 2 ** 20 and r["step_s"] > 0
    text = bench.report(results, "tiny")
    assert "recomputed / kept: peak" in text and "step time" in text
