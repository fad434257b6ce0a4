"""Gaussians -> coloured triangle mesh, and saving it (GLB / OBJ / PLY) for ComfyUI's Preview 3D and other tools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from comfy_api.latest import io

from .common import CATEGORY, check_interrupted, numbered_output_files, progress_bar
from .facelift_types import GaussianHeads, GaussiansType

MeshType = io.Custom("FACELIFT_MESH")
MESH_FORMATS = ["glb", "obj", "ply"]


@dataclass(frozen=True)
class Meshes:
    """One ``facelift_models.mesh.ColoredMesh`` per head on the FACELIFT_MESH socket."""

    items: tuple[Any, ...]

    def __repr__(self) -> str:
        return "FaceLift mesh (" + "; ".join(f"{len(m.faces):,} faces" for m in self.items) + ")"

    __str__ = __repr__


def core_mesh(meshes: Meshes):
    """Core ComfyUI's MESH (vertices [B,V,3], faces [B,F,3], glTF frame) for SaveGLB and other 3D nodes.

    Heads of different sizes are padded to a common size: extra vertices at the origin, extra faces
    degenerate (0, 0, 0), which viewers draw as nothing."""
    import torch
    from comfy_api.latest import Types

    from ..facelift_models.formats.mesh import to_file_frame

    nv = max(len(m.vertices) for m in meshes.items)
    nf = max(len(m.faces) for m in meshes.items)
    verts = torch.zeros(len(meshes.items), nv, 3)
    faces = torch.zeros(len(meshes.items), nf, 3, dtype=torch.int64)
    for i, m in enumerate(meshes.items):
        verts[i, :len(m.vertices)] = torch.from_numpy(to_file_frame(m.vertices)).float()
        faces[i, :len(m.faces)] = torch.from_numpy(m.faces)
    return Types.MESH(verts, faces)


class FaceLiftGaussiansToMesh(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        from ..facelift_models import mesh

        return io.Schema(
            node_id="FaceLiftGaussiansToMesh",
            display_name="FaceLift Gaussians to Mesh",
            category=CATEGORY,
            description=(
                "Turns FaceLift Gaussians into a closed triangle mesh with vertex colours, for Blender, game "
                "engines, 3D printing or ComfyUI's Preview 3D (through FaceLift Save Mesh). The Gaussians' "
                "opacity is accumulated on a voxel grid, floaters and inner shells are removed, the surface is "
                "extracted at half opacity, smoothed and decimated. Runs on the GPU when the Gaussians are there, "
                "else on the CPU (a few seconds to half a minute for a full head)."),
            inputs=[
                GaussiansType.Input("gaussians", tooltip="Gaussians from FaceLift Reconstruct or Load PLY."),
                io.Int.Input("resolution", default=mesh.DEFAULT_RESOLUTION, min=mesh.MIN_RESOLUTION,
                             max=mesh.MAX_RESOLUTION, step=16,
                             tooltip="Voxels along the head's longest side: 256 resolves about 2 mm on a head; "
                                     "higher keeps finer detail but is slower and needs more memory (cubic)."),
                io.Int.Input("smoothing", default=mesh.DEFAULT_SMOOTHING, min=0, max=50,
                             tooltip="Taubin smoothing iterations (volume preserving); 0 keeps the raw "
                                     "marching-cubes surface."),
                io.Int.Input("target_faces", default=mesh.DEFAULT_TARGET_FACES, min=0, max=5_000_000, step=1000,
                             tooltip="Decimate to about this many triangles (quadric error); 0 keeps them all."),
                io.Combo.Input("color_source", options=list(mesh.COLOR_SOURCES), default="gaussians",
                               tooltip="gaussians: each vertex takes the colours of the Gaussians around it (fast). "
                                       "views: the colour the head shows in renders from 24 cameras around it "
                                       "(slower, closer to the turntable)."),
            ],
            outputs=[
                MeshType.Output(display_name="facelift_mesh",
                                tooltip="The coloured mesh, for FaceLift Save Mesh."),
                io.Mesh.Output(display_name="mesh",
                               tooltip="The same geometry as ComfyUI's core MESH (no colours), for SaveGLB and "
                                       "other 3D nodes; +Y up, face toward +Z."),
            ],
        )

    @classmethod
    def execute(cls, gaussians: GaussianHeads, resolution: int = 256, smoothing: int = 4,
                target_faces: int = 200_000, color_source: str = "gaussians") -> io.NodeOutput:
        from ..facelift_models.errors import InputError
        from ..facelift_models.mesh import PROGRESS_TOTAL, gaussians_to_mesh
        from . import cache

        if not isinstance(gaussians, GaussianHeads):
            raise InputError("FaceLift Gaussians to Mesh: 'gaussians' must come from FaceLift Reconstruct or "
                             "Load PLY.")
        device = cache.torch_device("auto")
        bar = progress_bar(PROGRESS_TOTAL * len(gaussians))
        out = []
        for i, g in enumerate(gaussians.items):
            def report(done: int, total: int, base: int = i * PROGRESS_TOTAL) -> None:
                check_interrupted()
                bar.update_absolute(base + done)

            check_interrupted()
            out.append(gaussians_to_mesh(g.to(device), resolution=int(resolution), smoothing=int(smoothing),
                                         target_faces=int(target_faces), color_source=color_source,
                                         progress=report))
        meshes = Meshes(tuple(out))
        return io.NodeOutput(meshes, core_mesh(meshes))


class FaceLiftSaveMesh(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="FaceLiftSaveMesh",
            display_name="FaceLift Save Mesh",
            category=CATEGORY,
            description=(
                "Saves a FaceLift mesh with its vertex colours into ComfyUI's output folder (prefix + counter "
                "naming), atomically: .glb (binary glTF: Blender, game engines, web viewers), .obj (vertex colours "
                "as 'v x y z r g b') or .ply. +Y up, face toward +Z. Outputs the file's path relative to the output "
                "folder: connect it to Preview 3D's model_file to look at the head in ComfyUI."),
            inputs=[
                MeshType.Input("facelift_mesh", tooltip="A mesh from FaceLift Gaussians to Mesh."),
                io.Combo.Input("format", options=MESH_FORMATS, default="glb",
                               tooltip="glb for Preview 3D and most tools; obj and ply for mesh editors and "
                                       "slicers."),
                io.String.Input("filename_prefix", default="FaceLift/head_mesh",
                                tooltip="File name prefix inside the output folder; may contain sub-folders and "
                                        "%date% style fields like Save Image."),
            ],
            outputs=[io.String.Output(display_name="path",
                                      tooltip="Saved file, relative to ComfyUI's output folder (one line per "
                                              "head); Preview 3D's model_file takes it.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, facelift_mesh: Meshes, format: str = "glb",  # noqa: A002
                filename_prefix: str = "FaceLift/head_mesh") -> io.NodeOutput:
        from ..facelift_models.errors import InputError
        from ..facelift_models.formats.mesh import write_mesh

        if not isinstance(facelift_mesh, Meshes):
            raise InputError("FaceLift Save Mesh: 'facelift_mesh' must come from FaceLift Gaussians to Mesh.")
        if format not in MESH_FORMATS:
            raise InputError(f"FaceLift Save Mesh: unknown format {format!r}; choose one of {MESH_FORMATS}.")
        rel_paths, files = [], []
        for m, t in zip(facelift_mesh.items, numbered_output_files(filename_prefix, len(facelift_mesh.items),
                                                                   f".{format}")):
            check_interrupted()
            write_mesh(m, t.path, format)
            rel_paths.append(t.relative)
            files.append({"filename": t.filename, "subfolder": t.subfolder, "type": "output"})
        ui = {"text": ["\n".join(rel_paths)], "facelift_files": files}
        return io.NodeOutput("\n".join(rel_paths), ui=ui)


NODES = [FaceLiftGaussiansToMesh, FaceLiftSaveMesh]
