"""The local API: JSON lines on a Unix socket, roles from SO_PEERCRED, and its clients."""
