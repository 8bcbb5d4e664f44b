"""Local stand-ins for the outside systems (GoCardless API and webhooks; Sage in its own modules).

Product code never imports this package: it reaches the stand-ins through the same network interfaces
it uses for the real systems. The sandbox command, the demo and the tests start them.
"""
