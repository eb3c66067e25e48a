"""Where steps run: the container engine behind one small interface.

`docker` is the interface and its implementation over the Docker SDK (the only module that
imports `docker`); `endpoint` picks the engine as the Docker CLI does (DOCKER_HOST, contexts);
`dockersock` asks a local daemon questions with nothing to import (the no-op path);
`transfer` carries files to and from an engine that cannot see ours; `emulation` says whether
this machine runs another platform's programs; `step` runs one script in a container of a
stage, with the CA bundle, input files and download caches mounted. Takes: images, scripts,
mounts. Gives: exit codes, logs, committed containers.
"""
