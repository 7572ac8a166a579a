"""Ascend backend: ``.om`` engines (from the atc target) run through aclruntime, as ais_infer does."""
