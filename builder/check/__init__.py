"""`sandbox check`: a built image proven against the baseline (DESIGN.md §8).

`baseline` runs the checks; `scan` reads layer tars (setuid files, what must never be in a
layer); `probes` runs what Risoluto would run, as `spawn` says Risoluto starts a container
from the overlay; `report` prints one line per check, or JSON.
Takes: a built image and its overlay. Gives: a report.
"""
