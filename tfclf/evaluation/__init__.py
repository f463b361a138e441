"""How good and why: metrics and thresholds (pure numbers), integrated-gradient attributions,
their HTML page, and the run's report with its plots."""
