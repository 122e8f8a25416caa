"""vireid.inputs: the training input pipeline over a heatmap cache (dataset, sampler, augmentation, transforms)."""
