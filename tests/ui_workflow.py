"""Build the graph-editor (UI-format) workflows from the API-format ones, and compare the two.

The shipped pairs, ``workflows/api/X_api.json`` (for POST /prompt) and ``workflows/X.json`` (for the graph editor),
must describe the same graph. The UI files are generated from the API files with the node definitions of a real server
(``/object_info``), laid out in columns by graph depth. ComfyUI's template browser lists every ``*.json`` directly in
``workflows/`` (and in ``example_workflows/``, ``example/``, ``examples/``, ``workflow/``), so only the UI files live
there and the API forms sit one folder down, where it does not look: each workflow is listed once and every listed
entry loads in the graph editor. (ComfyUI also serves the first of those folders that exists at one URL, so the pack
has no other of them: the example photo lives in ``samples/``.) ``tests/test_workflows.py`` checks that the committed files still match.

    python -m tests.ui_workflow          # start a temporary ComfyUI, regenerate workflows/*.json
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"  # the UI files: ComfyUI's template browser serves this folder
API_WORKFLOWS = WORKFLOWS / "api"  # the API forms, out of the template browser's sight
PAIRS = {"facelift_photo_to_head_api.json": "facelift_photo_to_head.json",
         "facelift_multiview_photos_api.json": "facelift_multiview_photos.json",
         "facelift_batch_folder_api.json": "facelift_batch_folder.json",
         "facelift_photo_to_mesh_api.json": "facelift_photo_to_mesh.json"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
COL_W, GAP_X, GAP_Y = 320, 40, 30


def _is_link(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int)


def _inputs(spec: dict) -> list[tuple[str, list, bool]]:
    """(name, type spec, optional) of every input in the node's declared order."""
    out = []
    order = spec.get("input_order") or {k: list(v) for k, v in spec["input"].items()}
    for section in ("required", "optional"):
        for name in order.get(section, []):
            out.append((name, spec["input"][section][name], section == "optional"))
    return out


def _type_of(ts: list) -> str:
    return "COMBO" if isinstance(ts[0], list) else ts[0]


def widget_values(api_inputs: dict, spec: dict) -> list:
    """widgets_values in the frontend's order: one per widget input, + the seed control and upload extras."""
    vals = []
    for name, ts, _opt in _inputs(spec):
        t = _type_of(ts)
        opts = ts[1] if len(ts) > 1 and isinstance(ts[1], dict) else {}
        if t not in WIDGET_TYPES or opts.get("forceInput") or _is_link(api_inputs.get(name)):
            continue
        value = api_inputs.get(name, opts.get("default"))
        vals.append(value)
        if opts.get("control_after_generate"):
            vals.append("fixed")
        if opts.get("image_upload"):
            vals.append("image")
    return vals


def _depths(api: dict) -> dict[str, int]:
    depth: dict[str, int] = {}

    def d(nid: str) -> int:
        if nid not in depth:
            srcs = [v[0] for v in api[nid]["inputs"].values() if _is_link(v)]
            depth[nid] = 1 + max((d(s) for s in srcs), default=-1)
        return depth[nid]

    for nid in api:
        d(nid)
    return depth


def _height(spec: dict, n_widgets: int, n_sockets: int, class_type: str) -> int:
    h = 46 + 22 * max(n_sockets, len(spec.get("output", []))) + 26 * n_widgets
    if class_type in ("SaveImage", "PreviewImage", "LoadImage", "SaveAnimatedWEBP") or spec.get("output_node"):
        h += 180
    return h


def api_to_ui(api: dict, object_info: dict) -> dict:
    ids = {nid: i + 1 for i, nid in enumerate(sorted(api, key=lambda k: (len(k), k)))}
    depth = _depths(api)
    links, nodes = [], []
    out_links: dict[tuple[str, int], list[int]] = {}
    for nid in sorted(api, key=lambda k: ids[k]):
        for name, v in api[nid]["inputs"].items():
            if _is_link(v):
                lid = len(links) + 1
                links.append([lid, ids[v[0]], v[1], ids[nid], None, None])
                out_links.setdefault((v[0], v[1]), []).append(lid)
    link_by_target = {}
    for link in links:
        link_by_target.setdefault(link[3], []).append(link)
    col_y: dict[int, int] = {}
    for order, nid in enumerate(sorted(api, key=lambda k: (depth[k], ids[k]))):
        node = api[nid]
        spec = object_info[node["class_type"]]
        inputs, slot = [], 0
        for name, ts, optional in _inputs(spec):
            t = _type_of(ts)
            value = node["inputs"].get(name)
            if t in WIDGET_TYPES and not _is_link(value):
                continue
            entry = {"name": name, "type": t, "link": None}
            if optional:
                entry["shape"] = 7
            if _is_link(value):
                lid = next(l for l in link_by_target[ids[nid]] if l[4] is None and api[value[0]] is not None
                           and l[1] == ids[value[0]] and l[2] == value[1])
                lid[4], lid[5] = slot, t
                entry["link"] = lid[0]
                if t in WIDGET_TYPES:
                    entry["widget"] = {"name": name}
            inputs.append(entry)
            slot += 1
        outputs = []
        for k, (t, oname) in enumerate(zip(spec.get("output", []), spec.get("output_name", []))):
            outputs.append({"name": oname, "type": t, "links": out_links.get((nid, k), []), "slot_index": k})
        wv = widget_values(node["inputs"], spec)
        height = _height(spec, len(wv), len(inputs), node["class_type"])
        col = depth[nid]
        y = col_y.get(col, 60)
        col_y[col] = y + height + GAP_Y
        entry = {"id": ids[nid], "type": node["class_type"], "pos": [40 + col * (COL_W + GAP_X), y],
                 "size": [COL_W, height], "flags": {}, "order": order, "mode": 0, "inputs": inputs,
                 "outputs": outputs, "properties": {"Node name for S&R": node["class_type"]},
                 "widgets_values": wv}
        title = node.get("_meta", {}).get("title")
        if title and title != spec.get("display_name"):
            entry["title"] = title
        nodes.append(entry)
    nodes.sort(key=lambda n: n["id"])
    return {"last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {"ds": {"scale": 0.75, "offset": [0, 0]}}, "version": 0.4}


def ui_to_api_view(ui: dict, object_info: dict) -> dict:
    """A UI workflow as {node id: (class_type, {input: value or (source id, slot)})} for comparisons."""
    link = {l[0]: l for l in ui["links"]}
    out = {}
    for n in ui["nodes"]:
        spec = object_info[n["type"]]
        values = list(n.get("widgets_values", []))
        inputs = {}
        for name, ts, _opt in _inputs(spec):
            t = _type_of(ts)
            opts = ts[1] if len(ts) > 1 and isinstance(ts[1], dict) else {}
            sock = next((i for i in n["inputs"] if i["name"] == name), None)
            if sock is not None and sock.get("link") is not None:
                lk = link[sock["link"]]
                inputs[name] = (lk[1], lk[2])
                continue
            if t in WIDGET_TYPES and not opts.get("forceInput"):
                inputs[name] = values.pop(0)
                if opts.get("control_after_generate"):
                    values.pop(0)
                if opts.get("image_upload"):
                    values.pop(0)
        out[n["id"]] = (n["type"], inputs)
    return out


def api_view(api: dict) -> dict:
    ids = {nid: i + 1 for i, nid in enumerate(sorted(api, key=lambda k: (len(k), k)))}
    out = {}
    for nid, node in api.items():
        out[ids[nid]] = (node["class_type"], {k: (ids[v[0]], v[1]) if _is_link(v) else v
                                              for k, v in node["inputs"].items()})
    return out


def regenerate(object_info: dict) -> list[Path]:
    written = []
    for api_name, ui_name in PAIRS.items():
        api = json.loads((API_WORKFLOWS / api_name).read_text())
        ui = api_to_ui(api, object_info)
        (WORKFLOWS / ui_name).write_text(json.dumps(ui, indent=1) + "\n")
        written.append(WORKFLOWS / ui_name)
    return written


def main() -> int:
    sys.path.insert(0, str(REPO))
    from harness import comfy_host

    cdir = comfy_host.provision()
    with tempfile.TemporaryDirectory(prefix="facelift-ui-") as tmp:
        with comfy_host.ComfyServer(Path(tmp), cdir) as srv:
            info = srv.client().object_info()
    for p in regenerate(info):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
