"""The provenance section: every artifact the report was built from, with its parents,
the time ranges it was fitted on and its resolved config."""

from __future__ import annotations

from typing import Any

import tomli_w

import strates
from strates.report.document import Block, Code, Section, Text, spans, table, text, when
from strates.report.sources import KINDS, OTHER_KINDS, Sources


def config_toml(config: dict[str, Any]) -> str:
    """A resolved config as TOML (as in the manifest); `(empty)` for none."""
    if not config:
        return "(empty)\n"
    try:
        return tomli_w.dumps(config)
    except (TypeError, ValueError):
        import json

        return json.dumps(config, indent=2, default=str)


def _refs(parents: dict[str, str]) -> str:
    order = {s: i for i, s in enumerate((*KINDS, *OTHER_KINDS))}
    return ", ".join(f"{k}/{v[:8]}" for k, v in sorted(parents.items(), key=lambda kv: order.get(kv[0], 99))) or "none"


def provenance(src: Sources, *, report_id: str, report_config: dict[str, Any]) -> Section:
    rows = []
    manifests = src.manifests
    for stage in (*KINDS, *OTHER_KINDS):
        m = manifests.get(stage)
        if m is None and (stage in OTHER_KINDS or not src.pipeline):  # say "not recorded" for the pipeline's own
            continue
        if m is None:
            rows.append((stage, "not recorded", "", "", "", "", ""))
            continue
        rows.append((stage, m.id, when(m.created), spans(m.fitted) or "none", spans(m.selected) or "none", m.version,
                     _refs(m.parents)))
    parents = {kind: m.id for kind, m in manifests.items()}
    rows.append(("report", report_id, "this report", "none", "none", strates.__version__, _refs(parents)))
    blocks: list[Block] = [
        Text(f"Built by chaos {strates.__version__} from artifacts alone: the manifests and Parquet files of the "
             "artifacts below. Ids are hashes of (stage, resolved config, parent ids)."),
        table(("stage", "id", "created (UTC)", "fitted on", "selected on", "version", "parents"), rows,
              "The artifact graph, upstream first. \"fitted on\": the data each model was fitted on; \"selected "
              "on\": the data a choice was made on (a checkpoint, a setting); both end exclusive, and no evaluation "
              "overlaps either. Parents by the first 8 characters of their ids.", left=7, wrap=6),
    ]
    blocks += [Code(f"{m.ref}: resolved config", config_toml(m.config)) for m in manifests.values()]
    blocks.append(Code(f"report/{report_id}: resolved config", config_toml(report_config)))
    if src.problems:
        blocks.append(Text("Missing pieces: " + text(src.problems), muted=True))
    return Section("provenance", "Provenance", tuple(blocks))
