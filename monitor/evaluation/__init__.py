"""The evaluation harness: run scenarios through the pipeline and the baselines, score them
against the ground truth, and report (``poison-monitor evaluate``)."""
