"""Loaded by the test runner into every client script (PYTHONPATH): ends the process the moment
anything resolves or connects to a host other than loopback, so that a library reaching for
Microsoft (an authority, instance discovery, IMDS) fails the test rather than falling back
quietly. It uses Python's audit events (https://docs.python.org/3/library/audit_events.html)."""
import os
import sys

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _guard(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else None
    else:
        return
    if isinstance(host, bytes):
        host = host.decode()
    if host is not None and host not in LOOPBACK:
        # Not an exception: a library could catch it and carry on.
        sys.stderr.write(f"loopback_only: {event} to {host!r} refused\n")
        sys.stderr.flush()
        os._exit(97)


sys.addaudithook(_guard)
