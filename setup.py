"""ament_python package, also installable with pip (``pip install -e .``)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "synboost_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="Pixel-wise anomaly detection in driving images (SynBoost) as a real-time ROS 2 node",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
        (f"share/{PACKAGE}/models", glob("models/*")),
    ],
    include_package_data=True,
    package_data={PACKAGE: ["py.typed"]},
    install_requires=[
        "numpy>=1.23",
        "opencv-python-headless>=4.6",
        "torch>=2.1",
        "safetensors>=0.4",
        "scikit-learn>=1.1",
        "tqdm>=4.60",
    ],
    extras_require={
        "onnx": ["onnx>=1.15", "onnxruntime>=1.17", "onnxscript>=0.1"],
        "ros": [
            "ros-rclpy[fastrtps]",
            "ros-sensor-msgs",
            "ros-diagnostic-msgs",
            "ros-std-msgs",
        ],
        "bag": ["rosbags>=0.9.20"],
        "viz": ["matplotlib>=3.5"],
        "dev": ["pytest>=7", "pytest-timeout>=2", "ruff>=0.5"],
    },
    zip_safe=True,
    maintainer="synboost_ros developers",
    maintainer_email="synboost-ros@example.com",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "synboost = synboost_ros.cli.main:main",
            "anomaly_node = synboost_ros.ros.node:main",
        ],
    },
)
