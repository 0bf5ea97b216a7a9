"""MGD³ dataset distillation: mode discovery, mode-guided generation, the evaluation protocol, metrics."""
