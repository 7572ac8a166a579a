"""ghostbench: the pipeline's stages and the library they share.

``jobs.stages`` holds the five stage commands (``python -m jobs.stages.<stage>``); every other module here
is library code they (and the controller) use: ``params`` (each stage's typed parameters), ``records``
(the documents runs leave), ``store``, ``commit``, ``shards``, ``backends``, ``converters``, ``models``.
Nothing in ``jobs`` imports ``controller``.
"""

__version__ = "0.1.0"

# Bump a stage's version when a change to its code changes its output: the controller's step
# keys include it, so outputs made by the old code are rebuilt instead of reused.
STAGE_VERSIONS = {"export": 1, "convert": 1, "preprocess": 2, "infer": 5, "eval": 6}
