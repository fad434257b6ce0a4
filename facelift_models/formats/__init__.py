"""Files out (and back in): the official PLY (:mod:`.ply`), standard 3DGS PLY / .splat / .spz (:mod:`.export`), axis
conventions (:mod:`.axes`), ComfyUI SPLAT interop (:mod:`.splat_interop`) and coloured triangle meshes, GLB / OBJ /
PLY (:mod:`.mesh`)."""
