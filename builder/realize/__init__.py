"""Realizing a Lock's nodes into layers in the store: plan, execute.

("Realize" as Nix says it: a locked node becomes the layer its key names, built or found.)

`plan` decides from the lock and the cache alone what must build; `execute` builds the plan,
independent nodes in parallel, each in a stage of its ancestors, by its kind's `build`
(`builder.kinds`), within `slots` (a node needing no stage starts without its parents);
`stage` gives lock the images of nodes it has locked; `history` keeps
each project's last build and `explain` says why a node rebuilds.
Takes: a Lock. Gives: node entries in the store.
"""
