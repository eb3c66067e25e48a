"""The resolvers: what each ecosystem's own tools say a request means, pinned.

apt's closure (`apt`), a base image or debootstrap set (`base`, `image`), the runtimes'
publishers (`runtimes/`), pip and npm closures (`tools`), project trees (`deps`,
`installers`), downloaded binaries (`bins`), and the rules lock checks their answers by
(`rules`). The node kinds (`builder.kinds`) call them; `builder.lock` drives the kinds.
"""
