"""iot-poison-monitor: find lying and colluding IoT sensors while their data flows."""

__version__ = "0.1.0"
