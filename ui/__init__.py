"""The operator-facing web app (Starlette). For now: the status page that `sep up` serves."""
