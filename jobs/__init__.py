"""ghostbench pipeline stages.

Each stage is a command, ``python -m jobs.<stage>``, that reads and writes store URIs and
commits its output with a manifest written last. Stages never import ``controller``.
"""

STAGES = ("export", "convert", "preprocess", "infer", "eval")

__version__ = "0.1.0"
