"""pip install of the snn_perception Python package (metadata in setup.cfg).

colcon builds the same package as ament_cmake (CMakeLists.txt) to generate msg/;
this file serves users who only want the models, runtime and offline tools.
"""

from setuptools import setup

setup()
