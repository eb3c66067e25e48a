"""sandbox-builder: lockfile builds of the Docker images AI coding agents run in."""

__version__ = "0.1.0"
