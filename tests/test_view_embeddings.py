"""View prompt embeddings: documented prompts, computed from the folder's own text encoder, cached, official file."""

from __future__ import annotations

import json
import os

import pytest
import torch

from facelift_models.multiview import view_embeddings as ve
from facelift_models.errors import WeightsError
from harness.tiny_models import tiny_text_encoder, write_tiny_tokenizer


@pytest.fixture()
def text_folder(tmp_path):
    torch.manual_seed(0)
    tiny_text_encoder().save_pretrained(str(tmp_path / "text_encoder"), safe_serialization=True)
    write_tiny_tokenizer(tmp_path / "tokenizer")
    return tmp_path


def test_prompts_are_the_documented_ones():
    assert ve.VIEW_NAMES == ("front", "front_right", "right", "back", "left", "front_left")
    assert ve.view_prompts()[1] == "a rendering image of 3D models, front_right view, color map."


def test_computed_from_tokenizer_and_text_encoder(text_folder):
    tok, enc = ve.load_text_encoder(text_folder)
    got = ve.compute_view_embeddings(tok, enc)
    assert got.shape == (6, 77, 32) and got.dtype == torch.float32
    ids = tok(ve.view_prompts(), padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    assert ids.shape == (6, 77)
    with torch.no_grad():
        want = enc(ids).last_hidden_state
    assert torch.equal(got, want)
    # the rows share the prefix tokens and differ where the view name is
    assert torch.allclose(got[0, :5], got[3, :5]) and not torch.allclose(got[0], got[3])


def test_cache_written_once_and_reused(text_folder, monkeypatch):
    first = ve.get_view_embeddings(text_folder)
    cache = text_folder / ve.CACHE_FILENAME
    assert cache.is_file()
    assert not [p for p in text_folder.iterdir() if p.name.endswith(".tmp")]  # atomic write left no temp file

    def no_text_encoder(*a, **k):
        raise AssertionError("the text encoder must not be loaded when the cache is valid")

    monkeypatch.setattr(ve, "load_text_encoder", no_text_encoder)
    assert torch.equal(ve.get_view_embeddings(text_folder), first)


def test_cache_invalidated_when_text_encoder_files_change(text_folder, monkeypatch):
    ve.get_view_embeddings(text_folder)
    vocab_file = text_folder / "tokenizer" / "vocab.json"
    vocab = json.loads(vocab_file.read_text())
    vocab["on"] = len(vocab)  # a new merge needs its token in the vocabulary (transformers 5 checks)
    vocab_file.write_text(json.dumps(vocab))
    with open(text_folder / "tokenizer" / "merges.txt", "a") as f:
        f.write("o n\n")
    calls = []
    real = ve.load_text_encoder
    monkeypatch.setattr(ve, "load_text_encoder", lambda *a, **k: calls.append(1) or real(*a, **k))
    ve.get_view_embeddings(text_folder)
    assert calls == [1]


def test_official_clr_embeds_preferred(text_folder):
    official = torch.randn(6, 77, 32).half()
    torch.save(official, text_folder / ve.OFFICIAL_FILENAME)
    got = ve.get_view_embeddings(text_folder)
    assert torch.equal(got, official.float())
    assert not (text_folder / ve.CACHE_FILENAME).exists()


def test_official_file_with_code_is_refused(tmp_path):
    import argparse

    # an arbitrary pickled object: refused by weights_only loading (no code runs)
    torch.save({"x": argparse.Namespace(a=1)}, tmp_path / ve.OFFICIAL_FILENAME)
    with pytest.raises(WeightsError, match="clr_embeds.pt"):
        ve.get_view_embeddings(tmp_path)


def test_missing_text_encoder_is_a_clear_error(tmp_path):
    write_tiny_tokenizer(tmp_path / "tokenizer")
    with pytest.raises(WeightsError, match="text_encoder.*config.json"):
        ve.get_view_embeddings(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_folder_only_warns(text_folder):
    os.chmod(text_folder, 0o555)
    try:
        with pytest.warns(UserWarning, match="Could not cache"):
            got = ve.get_view_embeddings(text_folder)
        assert got.shape == (6, 77, 32)
    finally:
        os.chmod(text_folder, 0o755)
