"""The cumulative-effect plot of an experiment's readout (PNG), for the asset's metadata."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_cumulative_effect(cumulative: pd.DataFrame, metric: str, path: Path) -> Path:
    """Difference per day with its always-valid interval (CUPED when available), per variant."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = cumulative[cumulative["metric"] == metric].sort_values("date")
    prefix = "cuped_" if "cuped_diff" in rows.columns and rows["cuped_diff"].notna().all() else ""
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    for variant, part in rows.groupby("variant"):
        days = pd.to_datetime(part["date"])
        ax.plot(days, part[f"{prefix}diff"], marker="o", label=f"{variant} - control")
        ax.fill_between(
            days, part[f"{prefix}sequential_ci_low"], part[f"{prefix}sequential_ci_high"], alpha=0.2
        )
    ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_title(
        f"{metric}: cumulative difference, always-valid 95% interval ({prefix or 'raw '}estimate)"
    )
    ax.set_ylabel(metric)
    ax.legend(loc="best", fontsize="small")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
