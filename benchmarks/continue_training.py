"""Continue training one of our checkpoints with a training YAML (same data, split and losses).

The fitted baseline (E0, scale, shift) of the checkpoint is kept; the optimiser and the
learning-rate schedule start afresh (warm-up included), so this is a warm restart.

    nice -n 10 python benchmarks/continue_training.py analysis/models/geodite-si-mlearn.yaml \\
        --start mlipflows/data/models/geodite-si-mlearn.pt --max-time 1500
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="training YAML")
    parser.add_argument("--start", type=Path, required=True, help="checkpoint to continue from")
    parser.add_argument("--max-time", type=float, default=None, help="seconds (overrides the config)")
    parser.add_argument("--output", type=Path, default=None, help="checkpoint path (default: the config's)")
    args = parser.parse_args()

    from mlipflows.models.checkpoint import load_model
    from mlipflows.training import TrainConfig, train

    config = TrainConfig.from_yaml(args.config)
    updates = {"max_time_s": args.max_time, "output": args.output}
    config = config.model_copy(update={k: v for k, v in updates.items() if v is not None})
    model, _ = load_model(args.start)
    result = train(config, show_progress=False, model=model)
    v = result.validation.get("all", {})
    print(
        f"wrote {result.checkpoint} (best epoch {result.best_epoch}, stopped: {result.stopped}); "
        f"validation E MAE {v.get('energy_mae_mev_atom', float('nan')):.2f} meV/atom, "
        f"F MAE {v.get('force_mae_ev_a', float('nan')):.3f} eV/Å"
    )


if __name__ == "__main__":
    main()
