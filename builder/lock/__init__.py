"""`sandbox lock` and `sandbox outdated`: a spec resolved into a Lock, node by node.

`locking` walks the layer graph parents first and asks each node's kind (`builder.kinds`) to
lock it, keeping what need not change; `outdated/` compares every pin with what exists now.
Resolving runs steps in the nodes already locked: lock is handed a `Stager` (`stager`) that
builds them (`builder.realize.stage` is the one the commands give).
Takes: a Spec. Gives: a Lock.
"""
