"""ghostbench pipeline stages.

Each stage is a command, ``python -m jobs.<stage>``, that reads and writes store URIs and
commits its output with a manifest written last. Stages never import ``controller``.
"""

STAGES = ("export", "convert", "preprocess", "infer", "eval")

# How the preprocess stage decodes and resizes: "seed" is PIL exactly as the seed (the default);
# "opencv" is the opt-in fast path of jobs.imaging_opencv, close to the seed's output, not equal.
PIPELINES = ("seed", "opencv")

__version__ = "0.1.0"

# Bump a stage's version when a change to its code changes its output: the controller's step
# keys include it, so outputs made by the old code are rebuilt instead of reused.
STAGE_VERSIONS = {"export": 1, "convert": 1, "preprocess": 1, "infer": 1, "eval": 2}
