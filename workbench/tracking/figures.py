"""Figures into an MLflow run: interactive HTML always, PNG copies where a Chromium can render them."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from workbench import settings


def png_enabled() -> bool:
    """PNG copies need kaleido's Chromium: on when one is found, unless WORKBENCH_FIGURE_PNG=0."""
    flag = settings.figure_png_flag()
    if flag == "0":
        return False
    return flag == "1" or any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))


def log_figures(
    client: Any, run_id: str, figures: dict[str, Any], artifact_path: str = "figures"
) -> list[str]:
    """Each plotly figure as interactive HTML, and as PNG where kaleido finds a Chromium to render with."""
    logged = []
    for name, fig in figures.items():
        client.log_figure(run_id, fig, f"{artifact_path}/{name}.html")
        logged.append(f"{name}.html")
    if png_enabled():
        try:  # one browser session renders them all (about 3 s for seven figures)
            import plotly.io as pio

            with tempfile.TemporaryDirectory() as tmp:
                paths = [str(Path(tmp) / f"{n}.png") for n in figures]
                pio.write_images(list(figures.values()), paths)
                client.log_artifacts(run_id, tmp, artifact_path)
            logged += [f"{n}.png" for n in figures]
        except Exception as e:  # noqa: BLE001 - HTML is enough; say why there is no PNG
            client.set_tag(run_id, "figures_png_error", f"{type(e).__name__}: {e}"[:1000])
    return logged
