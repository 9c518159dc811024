"""``courtscribe models``: list, verify and fetch the models courtscribe uses."""
from __future__ import annotations

from typing import Optional

import typer

app = typer.Typer(no_args_is_help=True, help="List, verify and fetch the models courtscribe uses.")


@app.command("list")
def models_list() -> None:
    """Every model courtscribe knows, where it comes from, and whether it is available here."""
    from . import ModelError, default_registry

    reg = default_registry()
    for spec in reg.specs.values():
        try:
            where = str(reg.resolve(spec.name))
            state = "available"
        except ModelError:
            where, state = "-", "missing"
        src = spec.source
        origin = getattr(src, "model_id", None) or getattr(src, "repo", None) or f"wheel:{src.package}"
        typer.echo(f"{spec.name:26} {spec.kind:14} {state:10} {origin}  [{spec.licence}]  {where}")


@app.command("verify")
def models_verify(
    names: list[str] = typer.Argument(None, help="Models to verify (default: every available one)."),
    embedded: bool = typer.Option(False, "--embedded", help="Only the embedded defaults (must all pass)."),
) -> None:
    """Rehash model files against the pinned SHA-256; exit 1 on any mismatch."""
    from . import default_registry

    reg = default_registry()
    chosen = names or [s.name for s in reg.specs.values() if s.embedded or not embedded]
    failed = False
    for name in chosen:
        spec = reg.get(name)
        res = reg.verify(name)
        if res.ok:
            typer.echo(f"ok       {name}  {res.path}")
        elif res.path is None and not spec.embedded and not names:
            typer.echo(f"missing  {name}  (production model, not installed)")
        else:
            failed = True
            for problem in res.problems:
                typer.echo(f"FAILED   {name}  {problem}", err=True)
    if not names:  # the font printed 笔录 embed is pinned like the models
        from ..records import fonts

        try:
            ok, what = fonts.verify()
            typer.echo(f"{'ok' if ok else 'FAILED':<8} bilu-font  {what}", err=not ok)
            failed |= not ok
        except fonts.FontMissing as err:
            typer.echo(f"missing  bilu-font  ({err})")
    if failed:
        raise typer.Exit(1)


@app.command("fetch")
def models_fetch(name: str, model_id: Optional[str] = typer.Option(None, "--model-id", help="ModelScope id instead of the catalog's."),
                 revision: Optional[str] = typer.Option(None, help="ModelScope revision instead of the catalog's.")) -> None:
    """Download a production model from ModelScope into $COURTSCRIBE_MODEL_DIR (needs the hub)."""
    from . import ModelError, default_registry

    try:
        typer.echo(default_registry().fetch(name, model_id=model_id, revision=revision))
    except ModelError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2)
