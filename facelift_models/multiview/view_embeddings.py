"""The six fixed per-view prompt embeddings of the multi-view UNet (spec §5.5).

View identity reaches the UNet only through these cross-attention embeddings: the SD2.1 text encoder's
``last_hidden_state`` for "a rendering image of 3D models, {view} view, color map." with the six view names.
They are computed once from the checkpoint's own ``tokenizer/`` + ``text_encoder/`` and cached as a small
safetensors file next to the weights, so the text encoder (≈0.7 GB) is never kept in memory for sampling.
An official ``clr_embeds.pt`` (GitHub repo, fp16 [6,77,1024]) is used instead when the user provides one.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from ..atomic_io import atomic_path
from ..config import VIEW_NAMES
from ..errors import WeightsError
from .files import transformers_dtype

PROMPT_TEMPLATE = "a rendering image of 3D models, {view} view, color map."
CACHE_FILENAME = "facelift_view_embeds.safetensors"
OFFICIAL_FILENAME = "clr_embeds.pt"
CACHE_KEY = "view_embeds"


def view_prompts(views: tuple[str, ...] = VIEW_NAMES) -> list[str]:
    """The documented prompts, in view order (the underscore in e.g. ``front_right`` is literal)."""
    return [PROMPT_TEMPLATE.format(view=v) for v in views]


@torch.no_grad()
def compute_view_embeddings(tokenizer, text_encoder, prompts: list[str] | None = None) -> torch.Tensor:
    """``text_encoder(input_ids).last_hidden_state`` for the prompts: [V, max_length, hidden], fp32 on CPU.

    Tokenised with padding to ``tokenizer.model_max_length`` and truncation, run without an attention mask
    unless the text encoder's config asks for one (as the official generator did).
    """
    prompts = view_prompts() if prompts is None else prompts
    tokens = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                       return_tensors="pt")
    device = next(text_encoder.parameters()).device
    kwargs = {}
    if getattr(text_encoder.config, "use_attention_mask", False):
        kwargs["attention_mask"] = tokens.attention_mask.to(device)
    out = text_encoder(tokens.input_ids.to(device), **kwargs)
    return out[0].float().cpu()


def _text_encoder_signature(folder: Path) -> dict[str, str]:
    """Cheap identity of the text encoder + tokenizer files the cache was made from (names and sizes)."""
    sig = {}
    for sub in ("text_encoder", "tokenizer"):
        d = folder / sub
        if d.is_dir():
            for f in sorted(d.iterdir()):
                if f.is_file():
                    sig[f"{sub}/{f.name}"] = str(f.stat().st_size)
    return sig


def _atomic_save(tensor: torch.Tensor, path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({CACHE_KEY: tensor.contiguous()}, str(tmp), metadata=metadata)


def load_official_clr_embeds(path: str | Path) -> torch.Tensor:
    """The official ``clr_embeds.pt`` (a bare tensor [6,77,1024]); loaded with ``weights_only=True``."""
    path = Path(path)
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"The view-embedding file {path} does not exist.") from None
    except Exception as e:
        raise WeightsError(f"{path} cannot be read as a tensor file ({type(e).__name__}: {e}). It should be "
                           "FaceLift's mvdiffusion/data/fixed_prompt_embeds_6view/clr_embeds.pt; delete it to "
                           "let the node compute the embeddings from the checkpoint's text encoder.") from None
    if not torch.is_tensor(obj) or obj.dim() != 3:
        raise WeightsError(f"{path} does not hold a [views, 77, dim] tensor (got {type(obj).__name__}"
                           f"{tuple(obj.shape) if torch.is_tensor(obj) else ''}).")
    return obj.float()


def _read_cache(path: Path, expected_meta: dict[str, str]) -> torch.Tensor | None:
    """The cached tensor if it was made for the same prompts and (when they are still there) the same
    text-encoder files; the text encoder may have been deleted after caching to save space."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("prompts") != expected_meta["prompts"]:
                return None
            if expected_meta["source"] != json.dumps({}) and meta.get("source") != expected_meta["source"]:
                return None
            return f.get_tensor(CACHE_KEY).float()
    except Exception:
        return None  # unreadable cache: recompute


def load_text_encoder(folder: Path, device: str | torch.device = "cpu"):
    """The checkpoint's ``tokenizer/`` and ``text_encoder/`` (fp32), only for computing the view embeddings."""
    from transformers import CLIPTextModel, CLIPTokenizer

    for sub, needed in (("tokenizer", ("vocab.json", "merges.txt")), ("text_encoder", ("config.json",))):
        missing = [n for n in needed if not (folder / sub / n).is_file()]
        if missing:
            raise WeightsError(
                f"Cannot compute the view embeddings: {folder / sub} lacks {', '.join(missing)}. Download the "
                "complete 'mvdiffusion/pipeckpts' folder of wlyu/OpenFaceLift, or put FaceLift's official "
                f"{OFFICIAL_FILENAME} into {folder}.")
    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(folder / "tokenizer"))
        text_encoder = CLIPTextModel.from_pretrained(str(folder / "text_encoder"),
                                                     **transformers_dtype(torch.float32))
    except Exception as e:
        raise WeightsError(f"The text encoder or tokenizer in {folder} cannot be loaded ({type(e).__name__}: "
                           f"{e}). Re-download the 'text_encoder' and 'tokenizer' folders of wlyu/OpenFaceLift."
                           ) from None
    return tokenizer, text_encoder.to(device).eval()


def get_view_embeddings(folder: str | Path, clr_embeds_path: str | Path | None = None,
                        device: str | torch.device = "cpu", write_cache: bool = True) -> torch.Tensor:
    """The [6,77,D] view embeddings for the pipeline folder, fp32 on CPU.

    Order of preference: an explicit ``clr_embeds_path``; ``clr_embeds.pt`` inside ``folder``; the cache
    ``facelift_view_embeds.safetensors`` inside ``folder`` (if made from the same text-encoder files); else
    compute them from ``tokenizer/`` + ``text_encoder/`` on ``device``, write the cache (atomically; a read-only
    folder only gives a warning) and release the text encoder.
    """
    folder = Path(folder)
    if clr_embeds_path is not None:
        return load_official_clr_embeds(clr_embeds_path)
    if (folder / OFFICIAL_FILENAME).is_file():
        return load_official_clr_embeds(folder / OFFICIAL_FILENAME)

    prompts = view_prompts()
    expected_meta = {"prompts": json.dumps(prompts), "source": json.dumps(_text_encoder_signature(folder))}
    cache = folder / CACHE_FILENAME
    if cache.is_file():
        cached = _read_cache(cache, expected_meta)
        if cached is not None:
            return cached

    tokenizer, text_encoder = load_text_encoder(folder, device=device)
    try:
        embeds = compute_view_embeddings(tokenizer, text_encoder, prompts)
    finally:
        del text_encoder, tokenizer
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    if write_cache:
        try:
            _atomic_save(embeds, cache, expected_meta)
        except OSError as e:
            warnings.warn(f"Could not cache the view embeddings in {cache} ({e}); they will be recomputed "
                          "next time.")
    return embeds
