"""The `truce` command: one verb per thing an operator or monitor does.

Errors are one line plus a hint on stderr and a non-zero exit code.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from core.clickhouse import redact
from core.errors import ConfigError, TruceError
from core.home import prepare_home, private_umask
from core.kafka import replication
from core.kafka_access import kafka_access
from core.keys import KeyStore, Role
from core.settings import Settings, load_settings
from schemas import topic_names
from services.alerter.history import AlertHistory
from services.alerter.replay import replay
from services.alerter.silences import SilenceLog, matching
from services.alerter.wording import headline, plural
from services.published import Difference
from services.runtime import control
from services.runtime.broker import port_free
from services.runtime.processes import process_specs
from services.runtime.supervisor import Supervisor

app = typer.Typer(
    help="Truce: ceasefire and humanitarian-access monitoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def friendly(func: F) -> F:
    """Turn our errors into one clear line plus a hint, and exit 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TruceError as exc:
            first, _, rest = str(exc).partition("\n")
            err.print(f"[bold red]error:[/] {first}", highlight=False)
            if rest:
                err.print(rest, highlight=False, markup=False)
            if exc.hint:
                err.print(f"[yellow]hint:[/] {exc.hint}", highlight=False)
            raise typer.Exit(1) from None
        except OSError as exc:  # a file of TRUCE_HOME we cannot read or write
            where = f" ({exc.filename})" if exc.filename else ""
            err.print(f"[bold red]error:[/] {exc.strerror or exc}{where}", highlight=False)
            err.print("[yellow]hint:[/] check TRUCE_HOME and its permissions", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    """The settings, with TRUCE_HOME usable and private (one clear error otherwise)."""
    try:
        settings = load_settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        name = "TRUCE_" + "_".join(str(p) for p in first["loc"]).upper()
        raise ConfigError(
            f"{name}: {first['msg']}", hint="see Configuration in the README"
        ) from None
    private_umask()
    tightened = prepare_home(settings.home)
    if tightened:
        err.print(
            f"[yellow]warning:[/] {tightened} entries under {settings.home} were readable by "
            "other local accounts; they are now private (0700/0600)",
            highlight=False,
        )
    return settings


QueryUrl = Annotated[
    str | None, typer.Option("--url", help="Query API; default the local stack's.")
]


def api_key_option(who: str) -> Any:
    """``--api-key`` (or TRUCE_API_KEY) of the verbs that call the query API as ``who``."""
    return typer.Option(
        "--api-key", envvar="TRUCE_API_KEY", help=f"{who}; default the local operator key."
    )


def _print_endpoints(settings: Settings) -> None:
    table = Table(title=f"Truce is up ({settings.home})", show_header=False)
    table.add_row("ingest API", settings.ingest_url)
    table.add_row("query API", settings.query_url)
    table.add_row("alerter (CAP feed, silences)", settings.alerter_url)
    table.add_row("Kafka", settings.bootstrap_servers)
    table.add_row("ClickHouse", redact(settings.clickhouse_url))
    table.add_row("logs", str(settings.logs_dir))
    out.print(table)


def _ports(settings: Settings) -> list[tuple[str, int]]:
    """The ports ``truce up`` listens on, each with the setting that moves it."""
    names = {spec.name.split("-")[0] for spec in process_specs(settings)}
    ports: list[tuple[str, int]] = []
    if "kafka" in names:
        ports += [
            ("TRUCE_KAFKA_PORT", settings.kafka_port),
            ("TRUCE_KAFKA_CONTROLLER_PORT", settings.kafka_controller_port),
        ]
    if "ingest" in names:
        ports.append(("TRUCE_INGEST_PORT", settings.ingest_port))
        if settings.ingest_workers > 1:
            ports += [
                ("TRUCE_INGEST_PROBE_PORT", settings.ingest_worker_port(worker))
                for worker in range(settings.ingest_workers)
            ]
    if "streams" in names:
        ports += [
            ("TRUCE_STREAMS_PORT", settings.streams_worker_port(worker))
            for worker in range(settings.streams_workers)
        ]
    if "store" in names:
        ports.append(("TRUCE_QUERY_PORT", settings.query_port))
    if "alerter" in names:
        ports.append(("TRUCE_ALERTER_PORT", settings.alerter_port))
    return ports


def _check_ports(settings: Settings) -> None:
    """Fail before starting anything when a port is taken, naming it and its setting
    (else the cause surfaces only after a timeout, in a log tail)."""
    for name, port in _ports(settings):
        if not port_free(settings.bind_host, port):
            raise ConfigError(
                f"port {settings.bind_host}:{port} is already in use ({name}); nothing was started",
                hint=f"stop what listens there or set {name} to a free port",
            )


@app.command()
@friendly
def up(
    detach: Annotated[
        bool, typer.Option("--detach", help="Return once everything is ready.")
    ] = False,
) -> None:
    """Start the local stack (Kafka broker and every service) and print its endpoints."""
    settings = _settings()
    if control.supervisor_pid(settings) is None:  # else: "already running", below
        _check_ports(settings)
    if detach:
        control.start_detached(settings)
        _print_endpoints(settings)
        return

    def ready() -> None:
        _print_endpoints(settings)
        out.print("Press Ctrl-C to stop.")

    raise typer.Exit(Supervisor(settings).run(on_ready=ready))


@app.command()
@friendly
def down() -> None:
    """Stop the local stack cleanly; nothing accepted is lost. Safe to run twice."""
    settings = _settings()
    if control.stop_stack(settings):
        out.print(f"Truce stopped ({settings.home}).")
    else:
        out.print(f"Truce is not running ({settings.home}).")


@app.command()
@friendly
def status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
) -> None:
    """Show endpoints and whether every process is ready; exit 1 when not ready."""
    settings = _settings()
    info = control.status(settings)
    info["clickhouse_url"] = redact(info["clickhouse_url"])
    if as_json:
        sys.stdout.write(json.dumps(info) + "\n")
        raise typer.Exit(0 if info["ready"] else 1)
    table = Table(title=f"Truce at {settings.home}")
    for column in ("process", "endpoint", "pid", "ready", "restarts"):
        table.add_column(column)
    for name, proc in info["processes"].items():
        mark = "[green]yes[/]" if proc["ready"] else "[red]no[/]"
        table.add_row(name, proc["endpoint"], str(proc["pid"] or "-"), mark, str(proc["restarts"]))
    out.print(table)
    for group, topics in info["lag"].items():
        behind = ", ".join(f"{topic}: {lag}" for topic, lag in topics.items()) or "no commits yet"
        out.print(f"consumer lag ({group}): {behind}")
    for problem in info["replication"]["mismatches"]:
        out.print(f"[red]topic replication: {problem}[/]")
    out.print("ready" if info["ready"] else "[red]not ready[/]")
    if not info["ready"]:
        raise typer.Exit(1)


@app.command()
@friendly
def verify(
    week: Annotated[
        str | None, typer.Option("--week", help="One ISO week (YYYY-Www); default: all.")
    ] = None,
) -> None:
    """Recount the weekly metrics from the raw log of reports; exit 1 on any difference."""
    from services.verify import reconcile

    result = reconcile(_settings(), week)
    misclassified = result.get("misclassified", [])
    if misclassified:
        table = Table(title="reports the stream classifies differently from the raw log")
        for column in ("report_id", "streamed", "recounted"):
            table.add_column(column)
        for m in misclassified:
            table.add_row(m["report_id"], str(m["streamed"]), str(m["recounted"]))
        out.print(table)
        total = result.get("misclassified_total", len(misclassified))
        if total > len(misclassified):
            out.print(f"… and {total - len(misclassified)} more")
    if result["ok"]:
        out.print(f"verified {len(result['weeks'])} week(s): the stream and the recount agree")
        return
    table = Table(title="differences between the stream and the recount")
    for column in ("metric", "week", "key", "streamed", "recounted"):
        table.add_column(column)
    for d in result["differences"]:
        table.add_row(
            d["metric"], d["week"], str(d["key"]), str(d["streamed"]), str(d["recounted"])
        )
    out.print(table)
    raise typer.Exit(1)


def _print_differences(title: str, differences: list[Difference], labels: tuple[str, str]) -> None:
    table = Table(title=title)
    for column in ("metric", "week", "key", *labels):
        table.add_column(column)
    for d in differences[:50]:
        table.add_row(d.metric, d.week, d.key, str(d.published), str(d.expected))
    out.print(table)
    if len(differences) > 50:
        out.print(f"… and {len(differences) - 50} more")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
@friendly
def audit(ctx: typer.Context) -> None:
    """Verify the log behind a weekly report edition and recount its figures (CONTRACT 8);
    `truce audit receipt LEAF_HASH` proves a receipt is in the tree. `--help` for options.

    The checks are truce_audit's (stdlib and cryptography only, for third parties); this
    verb only supplies the local stack's query URL and operator key as defaults."""
    from truce_audit.cli import main as audit_main

    wants_help = any(arg in ("-h", "--help") for arg in ctx.args)
    settings = _settings()
    key = None
    if not wants_help and "--api-key" not in ctx.args and "TRUCE_API_KEY" not in os.environ:
        from services.verify import operator_key

        key = operator_key(settings)
    code = audit_main(ctx.args, default_url=settings.query_url, default_api_key=key)
    if code:
        raise typer.Exit(code)


@app.command()
@friendly
def publish(
    week: Annotated[str, typer.Option("--week", help="The ISO week to publish (YYYY-Www).")],
    url: QueryUrl = None,
    api_key: Annotated[str | None, api_key_option("A taskforce or admin key")] = None,
) -> None:
    """Freeze the week's weekly report as its next edition (CONTRACT 7) and print it."""
    from services.publish import publish_edition
    from services.verify import operator_key

    settings = _settings()
    answer = publish_edition(url or settings.query_url, api_key or operator_key(settings), week)
    head = answer.get("log_head") or {}
    out.print(f"published {answer['week']} edition {answer['edition']} at {answer['published_at']}")
    out.print(f"  sha256 of its JSON: {answer['sha256']}")
    if head:
        out.print(f"  pinned tree head: {head['tree_size']:,} entries, root {head['root_hash']}")
    out.print(f"  GET /v1/weekly-report/{answer['week']}?edition={answer['edition']}")


@app.command("import")
@friendly
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(help="CSV or .xlsx files, one report per row."),
    ],
    key: Annotated[
        str | None,
        typer.Option("--key", "--api-key", envvar="TRUCE_API_KEY", help="The partner's key."),
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="The kind of rows without a kind column.")
    ] = None,
    url: Annotated[
        str | None, typer.Option("--url", help="Ingest API; default the local stack's.")
    ] = None,
) -> None:
    """Submit spreadsheets (CONTRACT 10): each file is accepted whole or not at all."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeElapsedColumn

    from services.sheet_import import import_file, media_type

    if not key:
        raise ConfigError("no API key to import with", hint="pass --key or set TRUCE_API_KEY")
    for path in files:
        media_type(path)  # every file's type is checked before any is sent
    ingest_url = url or _settings().ingest_url
    total = sum(path.stat().st_size for path in files)
    columns = (BarColumn(), DownloadColumn(), TimeElapsedColumn())
    with Progress("{task.description}", *columns, console=err, transient=True) as progress:
        task = progress.add_task("importing", total=total)
        for path in files:
            progress.update(task, description=path.name)
            answer = import_file(
                ingest_url, key, path, kind, on_sent=lambda n: progress.advance(task, n)
            )
            rows = [r["row"] for r in answer["results"]]
            out.print(
                f"{path.name}: {answer['accepted']} accepted, {answer['duplicates']} "
                f"duplicate(s) (rows {min(rows)}-{max(rows)})",
                highlight=False,
            )


@app.command()
@friendly
def sql(
    statement: Annotated[str, typer.Argument(help="One SELECT or DESCRIBE (ClickHouse SQL).")],
    fmt: Annotated[
        str, typer.Option("--format", help="table, csv, tsv or json.", case_sensitive=False)
    ] = "table",
    url: QueryUrl = None,
    api_key: Annotated[str | None, api_key_option("A monitor or admin key")] = None,
) -> None:
    """Run read-only SQL on the live store (the BI views and reference tables)."""
    from services.sql_client import FORMATS, run_sql, table_rows
    from services.verify import operator_key

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    settings = _settings()
    body = run_sql(url or settings.query_url, api_key or operator_key(settings), statement, fmt)
    if fmt != "table":
        sys.stdout.buffer.write(body)
        return
    try:
        names, rows = table_rows(body)
    except (ValueError, KeyError, TypeError):  # the statement chose its own FORMAT
        sys.stdout.buffer.write(body)
        return
    table = Table(*names, show_lines=False)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)
    err.print(f"{len(rows)} row{'' if len(rows) == 1 else 's'}", highlight=False)


@app.command()
@friendly
def demo(
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the stack up (for the dashboard).")
    ] = False,
    scale: Annotated[
        float, typer.Option("--scale", help="Multiply the synthetic traffic (0.1 is quick).")
    ] = 1.0,
    folder: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the weekly reports; default $TRUCE_HOME/reports."),
    ] = None,
    openrosa: Annotated[
        float | None,
        typer.Option(
            "--openrosa",
            min=0.0,
            max=1.0,
            help="Share of first field reports sent through OpenRosa (/submission), as "
            "from phones, the rest through the JSON API; default: a quarter.",
        ),
    ] = None,
) -> None:
    """Replay the weeks after Munich 2016 through the public API and print the weekly report."""
    from services.demo.run import DemoMismatch, run_demo

    settings = _settings()
    share = {} if openrosa is None else {"openrosa": openrosa}
    result = run_demo(
        settings, out, scale=scale, out_dir=folder, keep_running=keep_running, **share
    )
    out.print(f"weekly report {result.week} written to {result.report_dir}:")
    for path in result.report_files:
        out.print(f"  {path.name}")
    out.print(f"dashboard: {result.dashboard_url}")
    out.print(f"monitor key: {result.monitor_key}")
    if not keep_running:
        out.print("(the stack is stopped: `truce demo --keep-running` or `truce up` to open it)")
    if result.differences:
        title = "published metrics that differ from the scenario's own count"
        _print_differences(title, result.differences, ("published", "expected"))
        raise DemoMismatch(
            f"{len(result.differences)} published figure(s) differ from the scenario",
            hint="`truce verify` compares the stream with a recount; see the logs",
        )
    out.print("[green]every published weekly figure equals the scenario's own count[/]")


@app.command()
@friendly
def rebuild(
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Stream workers for the replay; default one per core, up to the partitions.",
        ),
    ] = None,
) -> None:
    """Drop every projection (stream state, ClickHouse tables) and rebuild it from the log."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from services.rebuild import RebuildError
    from services.rebuild import rebuild as run_rebuild

    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress("{task.description}", *columns, console=out) as progress:
        task = progress.add_task("preparing", total=None)
        result = run_rebuild(
            _settings(),
            on_phase=lambda phase: progress.update(task, description=phase),
            on_replayed=lambda done, total: progress.update(task, completed=done, total=total),
            workers=workers,
        )
    out.print(
        f"replayed {result.reports:,} report revisions in {result.seconds:,.1f} s "
        f"({result.rate:,.0f}/s, {result.workers} stream worker(s)) into {result.weeks} "
        "week(s) of metrics"
    )
    if result.differences:
        _print_differences(
            "metrics that changed in the rebuild", result.differences, ("after", "before")
        )
    if result.log_problem:
        raise RebuildError(
            result.log_problem, hint="the log-heads topic and the reports topic must be intact"
        )
    if result.differences or not result.verified:
        raise RebuildError(
            "the rebuilt metrics differ from those before"
            if result.differences
            else "truce verify found differences after the rebuild",
            hint="`truce verify` lists them; the logs are under $TRUCE_HOME/logs",
        )
    out.print("[green]every metric equals what it was before, and truce verify agrees[/]")
    out.print("[green]the log's signed tree head from before the rebuild is reproduced[/]")


keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
@friendly
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Unique key name, e.g. sarc-field-1.")],
    role: Annotated[Role, typer.Option("--role", help="partner, monitor, taskforce or admin.")],
    org: Annotated[
        str | None, typer.Option("--org", help="Organisation code (required for partners).")
    ] = None,
) -> None:
    """Create a key and print it once, alone on the last line of stdout."""
    secret = KeyStore(_settings()).create(name, role, org)
    err.print(f"Created {role.value} key {name!r}. Store it now: it is not shown again.")
    sys.stdout.write(secret + "\n")


@keys_app.command("list")
@friendly
def keys_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
) -> None:
    """List keys (name, role, organisation, visible prefix, state); never the secrets."""
    keys = KeyStore(_settings()).list()
    if as_json:
        for key in keys:
            sys.stdout.write(key.model_dump_json(exclude={"hash"}) + "\n")
        return
    table = Table()
    for column in ("name", "role", "org", "prefix", "created", "state"):
        table.add_column(column)
    for key in keys:
        state = "active" if key.active else f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
        created = f"{key.created_at:%Y-%m-%d %H:%M}"
        table.add_row(key.name, key.role.value, key.org, key.prefix + "…", created, state)
    out.print(table)


@keys_app.command("revoke")
@friendly
def keys_revoke(name: Annotated[str, typer.Argument(help="The key's name.")]) -> None:
    """Make a key stop working (running services notice without a restart)."""
    KeyStore(_settings()).revoke(name)
    out.print(f"Key {name!r} revoked.")


alerts_app = typer.Typer(help="Alert notifications: silences.", no_args_is_help=True)
silence_app = typer.Typer(help="Mute matching alerts until a time.", no_args_is_help=True)
alerts_app.add_typer(silence_app, name="silence")
app.add_typer(alerts_app, name="alerts")


def _silence_log(settings: Settings) -> SilenceLog:
    log = SilenceLog(
        kafka_access(settings), settings.topic_prefix, settings.kafka_partitions,
        replication(settings),
    )  # fmt: skip
    log.ensure()
    return log


@silence_app.command("create")
@friendly
def silence_create(
    match: Annotated[
        list[str],
        typer.Option("--match", help="LABEL=VALUE (rule, area, governorate, party, severity)."),
    ],
    duration: Annotated[str | None, typer.Option("--for", help="e.g. 30m, 2h, 1d.")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="RFC 3339 end, e.g. 2026-03-01T18:00:00Z.")
    ] = None,
    comment: Annotated[str, typer.Option("--comment", help="Why (shown to on-call staff).")] = "",
    author: Annotated[str, typer.Option("--author", help="Who silences.")] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what it would mute; create nothing.")
    ] = False,
) -> None:
    """Create a silence, say which firing alerts it mutes, and print its id alone on the
    last line of stdout."""
    import getpass
    from datetime import UTC, datetime

    from services.alerter.config import parse_duration
    from services.alerter.silences import SilenceError, new_silence

    matchers: dict[str, str] = {}
    for item in match:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise SilenceError(
                f"--match {item!r} is not LABEL=VALUE", hint="e.g. --match area=daraya"
            )
        matchers[name.strip()] = value.strip()
    if (duration is None) == (until is None):
        raise SilenceError("give exactly one of --for or --until", hint="e.g. --for 2h")
    try:
        if duration is not None:
            ends_at = datetime.now(UTC) + parse_duration(duration)
        else:
            ends_at = datetime.fromisoformat(str(until).replace("Z", "+00:00"))
    except (ValueError, OverflowError) as exc:
        raise SilenceError(str(exc), hint="--for 2h or --until 2026-03-01T18:00:00Z") from exc
    if ends_at.tzinfo is None:
        raise SilenceError("--until needs a UTC offset", hint="e.g. 2026-03-01T18:00:00Z")
    silence = new_silence(matchers, ends_at, f"cli:{author or getpass.getuser()}", comment)
    settings = _settings()
    muted = matching(silence, _current_alerts(settings))
    said = ", ".join(f"{k}={v}" for k, v in matchers.items())
    err.print(f"It mutes {plural(len(muted), 'firing alert')} now" + (":" if muted else "."))
    for alert in muted:
        err.print(f"  {headline(alert)} ({alert.severity})", highlight=False)
    if dry_run:
        err.print(f"Nothing created (--dry-run): {said} until {ends_at:%Y-%m-%d %H:%M} UTC.")
        return
    _silence_log(settings).publish(silence)
    err.print(f"Silenced {said} until {silence.ends_at:%Y-%m-%d %H:%M} UTC.")
    sys.stdout.write(silence.silence_id + "\n")


def _current_alerts(settings: Settings) -> list[Any]:
    """The latest version of every alert on the alerts topic."""
    history = AlertHistory()
    replay(kafka_access(settings), topic_names(settings.topic_prefix).alerts, history.add_record)
    return history.current()


@silence_app.command("list")
@friendly
def silence_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
    include_expired: Annotated[bool, typer.Option("--all", help="Include expired ones.")] = False,
) -> None:
    """List silences, newest first (active and pending ones unless --all)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    found = [s for s in _silence_log(_settings()).read_all() if include_expired or s.ends_at > now]
    if as_json:
        for silence in found:
            sys.stdout.write(silence.model_dump_json() + "\n")
        return
    table = Table()
    table.add_column("id", no_wrap=True, min_width=16)  # whole, so it can be copied
    for column in ("matchers", "ends (UTC)", "state", "by", "comment"):
        table.add_column(column)
    for s in found:
        state = "active" if s.active(now) else "expired" if s.ends_at <= now else "pending"
        matchers = ", ".join(f"{k}={v}" for k, v in s.matchers.items())
        table.add_row(
            s.silence_id, matchers, f"{s.ends_at:%Y-%m-%d %H:%M}", state, s.created_by, s.comment
        )
    out.print(table)


@silence_app.command("expire")
@friendly
def silence_expire(
    silence_id: Annotated[str, typer.Argument(help="The silence's id or a unique prefix of it.")],
) -> None:
    """End a silence now (notifications resume for alerts that change afterwards)."""
    expired = _silence_log(_settings()).expire(silence_id)
    out.print(f"Silence {expired.silence_id} expired.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
