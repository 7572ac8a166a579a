"""Errors that stages raise, and the exit codes they map to.

A stage exits 0 on success, 2 on bad input or arguments (one line: what and where), 3 when a
needed tool or library is missing, and 1 on any other failure. A sweep (``ghostbench run``, ``demo``)
exits 4 when every step finished but a run failed the accuracy gate.
``ghostbench compare`` exits 5 when the second sweep regressed against the first, and 6 (with
``--inconclusive fail``) when it could not tell for some run. 7: the store stayed unavailable past its
retry deadline (an outage, not a wrong setting: rerun once it is back, and a sweep resumes where it stopped).
The README lists them; ``tests/project/test_exit_codes.py`` produces each one from a real failure.
"""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING_DEPENDENCY = 3
EXIT_GATE_FAILED = 4
"""Every step of a sweep finished, but some run's accuracy is below the gate (reference minus gate points)."""
EXIT_REGRESSION = 5
"""``ghostbench compare``: some run of the second sweep is slower than the first's beyond the threshold and
significantly, or its top-1 dropped by more than the sweep's gate (``jobs.results.compare``)."""
EXIT_INCONCLUSIVE = 6
"""``ghostbench compare --inconclusive fail``: no regression shown, but some pair was too noisy to judge."""
EXIT_STORE_UNAVAILABLE = 7
"""The store kept failing, or stopped answering, until its retry deadline (``GHOSTBENCH_S3_DEADLINE_S``); a
retry later may succeed, unlike 2. A store that never answered at all is a wrong setting: 2."""


class GhostbenchError(Exception):
    """Base class: an expected failure with a one-line message for the user."""

    exit_code = EXIT_FAILURE


class BadInput(GhostbenchError):
    """The user's input (a file, a field, an argument) is wrong; retrying will not help."""

    exit_code = EXIT_BAD_INPUT


class MissingDependency(GhostbenchError):
    """A library or tool this step needs is not installed here."""

    exit_code = EXIT_MISSING_DEPENDENCY


class StoreError(GhostbenchError):
    """The store could not be read or written."""


class StoreUnavailable(StoreError):
    """The store answered before but kept failing or stopped answering until the retry deadline: an outage."""

    exit_code = EXIT_STORE_UNAVAILABLE


class NotCommitted(BadInput):
    """An input names a store location whose output was never committed."""


class OptionError(BadInput):
    """A plugin's device or option is wrong (checked without a device, at plan time and in the stage).

    ``option`` names the option (None: the device), ``detail`` says what is allowed and what was given,
    so that a sweep file's error can name its own field path (``targets[0].backend_options.X``).
    """

    def __init__(self, option: str | None, detail: str):
        self.option = option
        self.detail = detail
        super().__init__(f"{'device' if option is None else 'option ' + option}: {detail}")
