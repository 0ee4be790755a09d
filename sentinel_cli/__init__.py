"""The `sentinel` command line."""
