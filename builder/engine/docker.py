"""`Engine` on a Docker daemon, through the Docker SDK: the parts put together.

The SDK is imported lazily, so commands that never touch Docker (`graph`, `status`, a
`lock --check`) stay fast.
"""

from __future__ import annotations

from builder.engine.confined import Confined
from builder.engine.containers import Containers
from builder.engine.images import Images


class DockerEngine(Containers, Confined, Images):
    """`Engine` on a real daemon, reached through DOCKER_HOST or the default socket (made by
    `choice.open_engine`), and `DiffFolders` where the daemon's overlay2 storage is here.

    The Docker SDK (with requests, ~0.15 s to import) connects on first need. The two
    questions a no-op build asks, whether the engine has an image and tagging it, go straight
    to the daemon's unix socket when it is local, so `sandbox build` with nothing to do never
    imports the SDK. `sdk` is a client object to use instead of connecting (tests).

    Images are named here by their config digest, the identity the lock and the team cache
    use. The containerd image store (Docker 28/29, Docker Desktop) names them by manifest
    digest instead: `find_image` learns that name, and every method taking an image turns
    our name into the engine's.

    Whether the daemon sees our files is proved, never guessed: a bind mount of a marker
    file of ours must show that file (`_sees`). Where it does not, mounts travel through the
    API (`Mount`) and the overlay2 upper dir is never read.
    """
