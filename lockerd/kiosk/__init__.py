"""The cabinet's touchscreen: `lockerd kiosk`, a local web app driving the daemon as a panel client."""
