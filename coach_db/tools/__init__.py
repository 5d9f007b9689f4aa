"""The tools on top of the library: the `coach-db` command, code generation, adoption, roles and
the embedded servers. They import the library, never the apps."""
