"""Thin rclpy adapters: the lifecycle base, the dehaze and segment nodes, an image source, bring-up.

No model logic lives here: nodes convert messages with :mod:`snn_perception.runtime.image_codec`,
run :class:`snn_perception.runtime.engine.Engine` and publish.
"""

# Before numpy, torch or rclpy start threads: the nodes run inference on a worker thread, which
# otherwise gets its own glibc arena and page-faults through its activations every frame.
from snn_perception.runtime.allocator import use_one_malloc_arena as _one_arena

_one_arena()
