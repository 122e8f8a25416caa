"""vireid.experiments: the drivers of the paper's experiments (ablation, sweeps, RegDB trials, profiling)."""
