"""Files out (and back in): the official PLY (:mod:`.ply`), standard 3DGS PLY / .splat / .spz (:mod:`.export`), axis
conventions (:mod:`.axes`) and ComfyUI SPLAT interop (:mod:`.splat_interop`)."""
