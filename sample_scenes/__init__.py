"""Scripts that build the sample scenes and their footage in Blender's Python, with nothing downloaded.

    footage.py     a low-poly figure walking and waving on a green screen, rendered to PNGs (and mp4)
    flash_room.py  the seed's flash room: a wall, a flashing red light, a dolly-back camera with shake
    garden.py      an outdoor garden: sun, primitive trees, a moving camera
    demo.py        `make demo`: the flash-room shot end to end

Every scene module exposes `build(scene=None) -> dict` (camera, card_spot, lights, ...). The shot runner
runs them from their files (blender_addon/headless/scripts.py lists the scenes), never imports them.
"""
