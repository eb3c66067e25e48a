"""The content-addressed store: layer tars in, layers and node entries out.

`cache` keeps one entry per node key and every layer by its diff ID (the project cache dir and
the user-wide store); `diffs` reads a container's diff as the engine gives it; `layers` packs a
directory, or normalizes such a diff, into one reproducible tar; `blobs` gzips a cached layer
once, deterministically, for a registry; `contents` lists a layer's files and where two layers
differ. Takes: files. Gives: `Layer`, `NodeEntry`. Below everything that builds or publishes.
"""
