"""Pure pipelines: arrays and a parameters dataclass in, arrays out (no zmq, no bpy)."""
