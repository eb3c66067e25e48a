"""What each command does, from parsed options to a result, without typer.

`lock` writes sandbox.toml's pins, checks them or compares them with their sources (`sandbox
lock`, `outdated`); `build` is the whole pipeline of `sandbox build` (lock read, nodes built
or pulled, image loaded, published, overlay written); `platformimage` is one platform's image
from its built nodes (config, layers, tags, the SBOM it labels), which `build`, `index` and
`verify` share; `index` publishes a lock of several platforms as one OCI image index;
`buildrun` is `build`/`publish` from options to printed lines (the no-op replay's fallback);
`status` says what a build would do and draws the layer graph; `verify` rebuilds the lock's
image from nothing and compares it with a pushed or local one; `attest` attaches provenance
and SBOM to a pushed image and checks them; `doctor` says whether this machine is ready; `gc`
removes what no build needs.
"""
