"""SynBoost pixel-wise anomaly detection for driving images, packaged for ROS 2."""

__version__ = "0.1.0"
