"""Subcommands of the `buurtstem` CLI, one module each."""
