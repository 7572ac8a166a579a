"""The five stage commands, ``python -m jobs.stages.<stage>``: export, convert, preprocess, infer, eval.

Each is a thin command over the library modules of ``jobs``: its parameters are ``jobs.params``' typed
object for the stage, its skeleton (parsing, logging, exit codes, the skip-if-committed rule) is
``jobs.stages.cli``. Nothing outside this package imports a stage.
"""
