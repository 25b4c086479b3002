"""Post-processing of the anomaly map: objects, the drivable area, temporal fusion, gating.

Plain Python (numpy, OpenCV); the pipeline, the node and the evaluation commands share it.
"""
