"""The shared base every stage stands on; imports nothing else of ours.

The error hierarchy and its exit codes (`errors`), whole-or-nothing writes (`atomic`), the
one canonical-JSON digest and every cache key (`keys`), the names of everything in the cache
dir (`layout`), the validators of spec strings (`patterns`), platforms, how long a network step
may wait (`limits`), a full disk said plainly (`space`), host programs (`proc`), the git
repository a spec is in (`gitrepo`), TOML read with
errors that name the key (`tomlread`), X.509 bundles (`certs`), where trees are made
(`scratch`), safe archive extraction (`unpack`) and the progress a person watches (`progress`:
lines; `liveprogress`: a table redrawn on a terminal).
"""
