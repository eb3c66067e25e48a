"""Images from cached layers: assembled, loaded into the engine, exported, replayed.

`assemble` makes an image's config (hence its ID) and the archive `docker load` takes,
`annotations` its standard `org.opencontainers.image.*` labels and manifest annotations;
`loading` loads only what the engine lacks, and tags it; `export` copies a deps tree to the
host; `saved` reads an engine's image back through `docker save`; `noop` answers a `sandbox
build` with nothing to do from what the last build recorded. Takes: layers and node entries.
Gives: image IDs. Below build, whose steps run in stage images.
"""
