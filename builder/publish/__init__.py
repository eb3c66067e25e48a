"""Publishing to `[image].registry`: the image by digest, every node under its key.

`push` sends the image and the team cache (a teammate's build pulls nodes by key);
`index` publishes a lock of several platforms as one OCI image index.
Takes: built nodes. Gives: registry digests.
"""
