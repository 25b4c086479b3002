"""Thin ROS 2 layer around the plain-Python cores."""
