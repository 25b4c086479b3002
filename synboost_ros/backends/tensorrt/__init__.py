"""The TensorRT backend: one cached engine per stage graph.

- ``api``: the one module that imports ``tensorrt`` (version checks, runtime, I/O tensors);
- ``build``: an engine from an ONNX graph, with the shared timing cache;
- ``cache``: the engine disk cache (key, sidecar, ownership and writability of the folder);
- ``calibration``: INT8 entropy calibration (image set digest, batches, the calibrator);
- ``backend``: the ``Backend`` that runs the engines with torch CUDA buffers.
"""
