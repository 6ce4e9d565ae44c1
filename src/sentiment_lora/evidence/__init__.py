"""Evidence: baselines, statistical tests, calibration, error analysis and clustering."""
