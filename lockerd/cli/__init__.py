"""Command-line entry points: `lockerd` (daemon, demo, tools) and `lockerctl` (talks to the daemon)."""
