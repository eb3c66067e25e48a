"""The content-addressed store: layer tars in, layers and node entries out.

`cache` keeps one entry per node key and every layer by its diff ID (the project cache dir and
the user-wide store); `layers` captures a directory or a committed container into one
normalized, reproducible tar; `blobs` gzips a cached layer once, deterministically, for a
registry. Takes: files. Gives: `Layer`, `NodeEntry`. Below everything that builds or publishes.
"""
