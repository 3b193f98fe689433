"""The ``leadflow`` subcommands of no stage: running, the schema, the config, dead letters."""
