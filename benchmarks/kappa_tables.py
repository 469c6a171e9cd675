"""Two `mlipflows bench kappa` tables side by side, material by material (markdown).

For protocol or code changes: which materials moved, by how much, and what it does to SRME.

    python benchmarks/kappa_tables.py analysis/kappa/sevennet-0-n37-v2.csv analysis/kappa/sevennet-0-n12.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def side_by_side(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Materials in both tables: κ and SRME of each, and the relative κ change in %."""
    cols = ["material_id", "formula", "kappa_dft", "kappa_pred", "kappa_c", "srme", "srme_reason"]
    both = old[cols].merge(new[cols], on=["material_id", "formula", "kappa_dft"], suffixes=("_old", "_new"))
    both["change_pct"] = 100 * (both["kappa_pred_new"] / both["kappa_pred_old"] - 1)
    return both


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args()
    both = side_by_side(pd.read_csv(args.old), pd.read_csv(args.new))
    print(f"| material | κ DFT | {args.old.stem} | κ_C | SRME | {args.new.stem} | κ_C | SRME | Δκ |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def kappa(value: float, reason: object) -> str:
        return f"{value:.3f}" if pd.notna(value) else str(reason)

    for r in both.itertuples():
        change = f"{r.change_pct:+.2f} %" if pd.notna(r.change_pct) else "—"
        old_k, new_k = kappa(r.kappa_pred_old, r.srme_reason_old), kappa(r.kappa_pred_new, r.srme_reason_new)
        print(
            f"| {r.formula} {r.material_id} | {r.kappa_dft:.2f} | {old_k} | {r.kappa_c_old:.4f} "
            f"| {r.srme_old:.3f} | {new_k} | {r.kappa_c_new:.4f} | {r.srme_new:.3f} | {change} |"
        )
    moved = both["change_pct"].abs()
    print(
        f"\n{len(both)} materials in both; |Δκ| median {moved.median():.3f} %, max {moved.max():.3f} %; "
        f"mean SRME {both['srme_old'].mean():.4f} → {both['srme_new'].mean():.4f}"
    )


if __name__ == "__main__":
    main()
