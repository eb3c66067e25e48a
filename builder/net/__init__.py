"""HTTP from the host: checked downloads and the OCI distribution API.

`downloads` fetches indexes and archives (checksummed, content-addressed, bounded by
`core.limits`); `registry` is a small registry v2 client (blobs, manifests, tags, auth).
Used by lock (what a release or a base image is), build (archives) and publish (pushes).
"""
