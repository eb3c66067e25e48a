"""The one error hierarchy. Each class carries the exit code the CLI returns (DESIGN.md §10).

Only `builder.cli.app` catches these; everything else lets them rise. A message says what failed,
where (file, key, line when known) and what to do about it.
"""


class BuilderError(Exception):
    """Root of every error the tool reports to a user (as opposed to a bug)."""

    exit_code = 1


class SpecError(BuilderError):
    """sandbox.toml is malformed or asks for something impossible."""

    exit_code = 2


class LockError(BuilderError):
    """sandbox.lock is missing, stale, malformed or was edited by hand."""

    exit_code = 3


class ResolutionError(BuilderError):
    """A version, package or image could not be resolved while locking."""

    exit_code = 4


class BuildError(BuilderError):
    """A node's build step failed, or its result broke a rule of the graph."""

    exit_code = 5


class CheckError(BuildError):
    """The built image failed `sandbox check` (or there is no image to check).

    The security baseline and "every declared tool runs" are properties of a build's result
    (DESIGN.md §5), so a failed check exits like a build whose result broke a rule (5): CI
    treats `sandbox build && sandbox check` as one gate, and §10's codes stay as documented.
    """


class EngineRefusedError(BuildError):
    """The engine answered, and refused: a container that cannot start, an option it does not
    know, an image it lacks, an error of its own (a 500). It exits as a failed build step (5).
    `status` is the engine's HTTP status, when it gave one (409: the thing is in use)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CacheError(BuilderError):
    """The cache directory is unusable or holds a corrupt entry."""

    exit_code = 6


class RegistryError(BuilderError):
    """A registry refused, rejected or could not be reached."""

    exit_code = 7


class OverlayError(BuilderError):
    """The orchestrator's overlay API refused or could not be reached."""

    exit_code = 8


class EngineUnavailableError(BuilderError):
    """The Docker Engine cannot be reached."""

    exit_code = 9


class VerifyError(BuilderError):
    """`sandbox verify`: the image rebuilt from the lock is not the image it was checked
    against, or that image's attestations do not hold. A code of its own (10), so CI tells
    "this image is not the lock's" from a build that could not run (5)."""

    exit_code = 10
