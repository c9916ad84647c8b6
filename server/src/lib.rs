//! The `silverback` server: HTTP API, configuration, rules and CLI.
