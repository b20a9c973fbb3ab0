"""Pure pipelines: arrays and a parameters dataclass in, arrays out. No zmq, no bpy."""
