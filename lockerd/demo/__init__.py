"""`lockerd demo`: the daemon on the simulator through a scripted day."""
