"""The null backend: fixed logits, no compute. It measures the harness's own overhead."""
