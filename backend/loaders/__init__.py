"""Loaders for the weights the depth, matte and upscale stages use.

Each takes an already-resolved source (a local folder or file, or a Hugging Face id) and
`local_files_only=True` by default, so nothing downloads unless the caller allows it. The model
registry (backend/models.py) decides the source and keeps what they load warm between jobs.
"""
