"""Photo folders for the batch tests and benchmark: variants of the example portrait (faces MTCNN finds), a cat, a corrupt file."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

REPO = Path(__file__).resolve().parents[1]
PORTRAIT = REPO / "samples" / "astronaut.png"


def face_variants(n: int) -> list[Image.Image]:
    """``n`` (<= 6) different photos of the example face: mirrored, scaled, rotated, brighter, shifted."""
    im = Image.open(PORTRAIT).convert("RGB")
    canvas = Image.new("RGB", (640, 560), (90, 110, 140))
    canvas.paste(im.resize((420, 420)), (150, 100))
    out = [im, ImageOps.mirror(im), canvas, im.rotate(6, fillcolor=(255, 255, 255)),
           ImageEnhance.Brightness(im).enhance(1.25), im.crop((40, 0, 512, 400))]
    return out[:n]


def cat() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.chelsea())


def write_photo_folder(folder: Path, faces: int = 6, cat_photo: bool = True, corrupt: bool = True) -> dict:
    """Write the photos into ``folder``; returns {"faces": [names], "cat": name, "corrupt": name}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i, img in enumerate(face_variants(faces)):
        name = f"face_{i + 1:02d}.{'jpg' if i % 2 else 'png'}"
        img.save(folder / name)
        names.append(name)
    out: dict = {"faces": names}
    if cat_photo:
        cat().save(folder / "cat.png")
        out["cat"] = "cat.png"
    if corrupt:
        (folder / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
        out["corrupt"] = "corrupt.jpg"
    return out
