"""Building a Lock's nodes: plan, execute, recipes.

`plan` decides from the lock and the cache alone what must build; `execute` builds the plan,
independent nodes in parallel, each in a stage of its ancestors; `recipes/` is each node
kind's build step; `stage` gives lock the images of nodes it has locked; `history` keeps
each project's last build and `explain` says why a node rebuilds.
Takes: a Lock. Gives: node entries in the store.
"""
