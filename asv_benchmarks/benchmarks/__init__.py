"""asv benchmarks of fastmlp beside scikit-learn and (when installed) PyTorch."""
