"""GoCardless: webhook verification (pure), the webhook receiver, the API client and inbox processing.

Submodules are imported where used so that the pure `webhooks` module never drags in an HTTP stack.
"""
