"""Where a campaign stands: per-stage counts from its manifests and stored results; all campaigns."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from jobflow import JobStore

from mlipflows.campaign.funnel import MANIFEST, PLANNED, gate_of, stage_docs
from mlipflows.errors import short_reason
from mlipflows.store import RESULTS, store_errors

NOT_RUN = "not run yet"  # a declared stage (its planned manifest) that has not started
SUMMARY = "surrogate"  # a surrogate stage's summary document (not a structure's result)
# stages without manifests, in run order: a surrogate campaign's (see campaign.surrogate), then
# every campaign's relax and hull
BASE = (
    ("label", "relax"),
    ("label-frames", "static"),
    ("screen", "relax"),
    ("screen-hull", "hull"),
    ("check", "relax"),
    ("relax", "relax"),
    ("hull", "hull"),
)


@dataclass
class StageStatus:
    """One stage of a campaign: how many structures were selected, done, failed, pending."""

    stage: str
    kind: str
    selected: int
    successful: int = 0
    failed: int = 0
    unphysical: int = 0
    passed: int = 0
    pending: int = 0
    state: str = ""
    query: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    settings_digest: str | None = None
    stopped_at_source: dict[str, int] = field(default_factory=dict)
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)
    work_s: float | None = None  # wall seconds of the runs that did work (funnel stages)

    @property
    def ran(self) -> bool:
        """False for a declared stage that has not started (cut by ``--until``, or not reached)."""
        return self.state != NOT_RUN


def _counts(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    states = Counter(d.get("state", "failed") for d in docs)
    gate = gate_of(kind)
    bad = Counter(short_reason(d.get("error")) for d in docs if d.get("state") != "successful")
    return {
        "successful": states.get("successful", 0),
        "failed": states.get("failed", 0),
        "unphysical": states.get("unphysical", 0),
        "passed": sum(1 for d in docs if d.get("state") == "successful" and not gate(d)),
        "failure_reasons": bad.most_common(3),
    }


def campaign_status(store: JobStore, campaign: str) -> list[StageStatus]:
    """Per-stage status of ``campaign`` (the newest settings of each stage); [] if unknown."""
    with store_errors(store, "reading the campaign"):
        results = store.additional_stores[RESULTS]
        results.connect()
        base = list(
            results.query(
                {"campaign": campaign, "stage": {"$in": [stage for stage, _ in BASE]}},
                properties=["stage", "settings_digest", "created_at"],
            )
        )
        manifests = list(results.query({"campaign": campaign, "task_type": MANIFEST}, properties={"_id": 0}))
        out = []
        for stage, kind in BASE:
            mine = [d for d in base if d.get("stage") == stage]
            if not mine:
                continue
            digest = max(mine, key=lambda d: str(d.get("created_at", "")))["settings_digest"]
            docs = [d for d in stage_docs(results, campaign, stage, digest) if d.get("task_type") != SUMMARY]
            out.append(
                StageStatus(
                    stage, kind, len(docs), settings_digest=digest, state="done", **_counts(docs, kind)
                )
            )
        newest: dict[str, dict[str, Any]] = {}
        for m in sorted(manifests, key=lambda m: str(m.get("created_at", ""))):
            newest[m["stage"]] = m
        # funnel order (manifests written before positions were recorded: run order)
        for m in sorted(newest.values(), key=_funnel_place):
            if m.get("state") == PLANNED:
                out.append(
                    StageStatus(
                        m["stage"],
                        m.get("kind", "?"),
                        0,
                        state=NOT_RUN,
                        query=m.get("query") or {},
                        source=m.get("source"),
                        settings_digest=m["settings_digest"],
                    )
                )
                continue
            docs = stage_docs(results, campaign, m["stage"], m["settings_digest"])
            ids = set(m.get("selected_ids", []))
            mine = [d for d in docs if d["structure_id"] in ids]
            status = StageStatus(
                m["stage"],
                m.get("kind", "?"),
                m.get("n_selected", len(ids)),
                pending=len(ids - {d["structure_id"] for d in mine}),
                state=m.get("state", ""),
                query=m.get("query") or {},
                source=m.get("source"),
                settings_digest=m["settings_digest"],
                stopped_at_source=m.get("stopped_at_source") or {},
                work_s=m.get("work_s"),
                **_counts(mine, m.get("kind", "")),
            )
            out.append(status)
    return out


def _funnel_place(manifest: dict[str, Any]) -> tuple[float, str]:
    """The stage's place in the funnel; then time (manifests stored before places were recorded)."""
    return manifest.get("position", math.inf), str(manifest.get("created_at", ""))


def list_campaigns(store: JobStore) -> list[dict[str, Any]]:
    """Every campaign in the store: candidates, result documents, models, stages, last update.

    ``candidates`` and ``not successful`` count structures, not documents (a failed relaxation
    also fails its stability document: one candidate, not two), and leave out the elemental
    references and a surrogate's label frames (by their tags): a failed reference shows as its
    candidates' failed hulls."""
    from mlipflows.makers.campaign import REFERENCE_TAG

    with store_errors(store, "listing campaigns"):
        results = store.additional_stores[RESULTS]
        results.connect()
        rows = results.query(
            {"campaign": {"$ne": None}},
            properties=[
                "campaign",
                "structure_id",
                "task_type",
                "stage",
                "position",
                "model.name",
                "created_at",
                "state",
                "tags",
            ],
        )
        info: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "n_results": 0,
                "ids": set(),
                "failed": set(),
                "models": set(),
                "stages": {},  # stage → (its manifest's funnel place, first document's time)
                "last": "",
            }
        )
        for r in rows:
            c = info[r["campaign"]]
            when = str(r.get("created_at", ""))
            if r.get("stage"):
                place = (r.get("position", math.inf), when)
                c["stages"][r["stage"]] = min(c["stages"].get(r["stage"], place), place)
            if r.get("task_type") == MANIFEST:
                continue
            c["n_results"] += 1
            sid = str(r.get("structure_id"))
            if not {REFERENCE_TAG, "label-frame"} & set(r.get("tags") or []):
                c["ids"].add(sid)
                if r.get("state") != "successful":
                    c["failed"].add(sid)
            if (r.get("model") or {}).get("name"):
                c["models"].add(r["model"]["name"])
            c["last"] = max(c["last"], when)
    return [
        {
            "campaign": name,
            "candidates": len(c["ids"]),
            "results": c["n_results"],
            "not successful": len(c["failed"]),
            "models": ", ".join(sorted(c["models"])),
            "stages": ", ".join(_funnel_order(c["stages"])),
            "last result": c["last"][:19].replace("T", " "),
        }
        for name, c in sorted(info.items())
    ]


def _funnel_order(first_seen: dict[str, tuple[float, str]]) -> list[str]:
    """relax, hull, then the stages by funnel place (stores from before places: first run)."""
    later = sorted((t, s) for s, t in first_seen.items() if s not in ("relax", "hull"))
    return [s for s in ("relax", "hull") if s in first_seen] + [s for _, s in later]
