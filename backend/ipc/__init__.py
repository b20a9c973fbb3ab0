"""What crosses between the add-on and the backend: the wire format, the take layout, server and client.

Only the standard library, numpy and zmq may be imported here, so Blender's Python can load it.
"""
