"""Platform connectors: pure translation between platform bytes and ReviewBridge's canonical types."""
