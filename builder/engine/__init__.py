"""Where steps run: the container engine behind one small interface.

`interface` is that interface (`Engine`, what every engine promises; `DiffFolders`, a
capability some offer besides) and the values crossing it (`Mount`, `RunResult`, ...);
`choice` is the one place that picks the engine a process talks to (`open_engine`). `docker`
implements the interface over the Docker SDK, put together from `connection` (reaching the
daemon, its refusals as our errors), `images`, `containers` (a build step's run, commit and
changes), `confined` (a container run as the orchestrator would) and `sharing` (whether the
daemon sees our files, proved by a probe, and how mounts travel); only `connection` and
`sharing` import `docker`, lazily. `endpoint` picks the engine as the Docker CLI does
(DOCKER_HOST, contexts); `dockersock` asks a local daemon questions with nothing to import
(the no-op path); `transfer` carries files to and from an engine that cannot see ours;
`emulation` says whether this machine runs another platform's programs; `step` runs one
script in a container of a stage, with the CA bundle, input files and download caches
mounted. Takes: images, scripts, mounts. Gives: exit codes, logs, committed containers.
"""
