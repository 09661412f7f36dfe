"""distill: licence-gated distillation jobs with provenance."""
