"""The `sandbox` command: `entry` (a plain `sandbox build` skips typer) and the typer app.

`app` parses options and calls one action per command; `starter` is the sandbox.toml that
`sandbox init` writes. Nothing below imports this package.
"""
