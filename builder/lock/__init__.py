"""`sandbox lock`: a spec resolved into a Lock, node by node, keeping what need not change.

`locking` drives the resolvers of `resolve/` (apt, the base image, pip/npm closures, deps),
`runtimes/` and `bins` (publishers' indexes and archive layouts) and `managers` (the files
package managers read, rendered from pins); `pinning` says what the lock shows that sandbox.toml
does not; `outdated/` compares every pin with what exists now. Resolving runs steps in the
nodes already locked: it is handed a `Stager` that builds them (see `build.stage`).
Takes: a Spec. Gives: a Lock.
"""
