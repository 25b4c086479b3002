"""The demo drive: a recorded street with anomalies, replayed through the node."""
