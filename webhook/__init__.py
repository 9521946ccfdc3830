"""The admission webhook: a thin ASGI transport over guard.admission."""
