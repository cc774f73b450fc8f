"""The process: the daemon, the supervisor of its components, the event bus, systemd notify, log setup."""
