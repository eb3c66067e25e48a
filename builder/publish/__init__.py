"""Publishing to `[image].registry`: the image by digest, every node under its key.

`push` sends a platform's image and the team cache (each node's layers and entry under its key,
so a teammate's build pulls instead of building); `RegistryCache` is where a build looks for
those nodes; `remote` reads a pushed image back (config, layer blobs) for `verify`; `referrers`
attaches artifacts (attestations) to an image and finds them; `signing` signs statements as
DSSE envelopes and checks them. The image index of several platforms is `actions.index` (it
needs each platform's image stacked, SBOM included). Takes: built nodes. Gives: registry
digests.
"""
