"""CLI commands, one module per capability. Each module has ``register(app)``."""
