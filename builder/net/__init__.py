"""HTTP from the host: checked downloads and the OCI distribution API.

`transport` is the one HTTP policy (retries, backoff, timeouts from `core.limits`, proxies,
unredirected credentials) that every request here and Risoluto's client use; `downloads`
fetches indexes and archives (checksummed, content-addressed); `registry` is a small registry
v2 client (blobs, manifests, tags), with `registry_auth` (Docker's credentials, the 401
challenge) and `blob_stream` (an upload hashed on the way).
Used by lock (what a release or a base image is), build (archives) and publish (pushes).
"""
