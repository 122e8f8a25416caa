"""pipeline: the offline stage (vireid-prep): manifests, synthetic data, pose estimators, heatmap cache."""
