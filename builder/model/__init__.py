"""The two files a project holds and what they mean: sandbox.toml and sandbox.lock.

`spec` and `specfile` parse and validate sandbox.toml into frozen dataclasses (`tables`: the
tables registered kinds read); `graph` is the layer graph (which nodes, what each needs; the
kinds fill it); `lockfile` is sandbox.lock: the model every
later stage reads, its node order, and reading and writing it; `inputs` and `toolinputs` are
each node kind's pinned inputs as typed dataclasses, read and written back by `typed` (which
refuses a damaged table through `fields`); `inherit` says what an image keeps of its base's
config. Pure data and rules: no engine, no network.
"""
