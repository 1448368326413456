"""Thin rclpy adapters: the lifecycle base, the dehaze and segment nodes, an image source, bring-up.

No model logic lives here: nodes convert messages with :mod:`snn_perception.runtime.image_codec`,
run :class:`snn_perception.runtime.engine.Engine` and publish.
"""
