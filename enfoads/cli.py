"""``enfoads``: the command line. Arguments are parsed here, in ``main()``, never at import."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from enfoads.version import __version__


def _cached_models(models_dir: Any) -> list[str]:
    hub = models_dir / "hub"
    if not hub.is_dir():
        return []
    return sorted(
        p.name.removeprefix("models--").replace("--", "/")
        for p in hub.iterdir()
        if p.name.startswith("models--")
    )


def cmd_info(args: argparse.Namespace) -> int:
    from enfoads.core.settings import GB, load_settings
    from enfoads.core.vram import device_totals, resolve_device

    settings = load_settings()
    info = {
        "version": __version__,
        "data_dir": str(settings.data_dir),
        "database": settings.db_url,
        # on Drive: the live file is local and copied here after each job (dbfile.py)
        "database_copy": str(settings.db_backup_path) if settings.db_on_local_disk else None,
        "device": resolve_device(settings.device),
        "budgets": {"gpu_gb": settings.gpu_budget_gb, "ram_gb": settings.ram_budget_gb},
        "devices": device_totals(),
        "cached_models": _cached_models(settings.models_dir),
        "settings": json.loads(settings.model_dump_json()),
    }
    for secret in (
        "server_token",
        "ngrok_authtoken",
        "s3_secret_access_key",
    ):  # never print a secret in full
        if getattr(settings, secret):
            info["settings"][secret] = getattr(settings, secret)[:4] + "…"
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from enfoads.core.i18n import t

    lang = settings.language
    rows = [
        ("cli.info.data_dir", info["data_dir"]),
        ("cli.info.database", info["database"]),
        ("cli.info.device", info["device"]),
        (
            "cli.info.budgets",
            f"GPU {settings.gpu_budget_gb:.1f} GB, RAM {settings.ram_budget_gb:.1f} GB",
        ),
    ]
    for gpu in info["devices"]["gpus"]:
        rows.append(
            ("cli.info.gpu", f"{gpu['index']}: {gpu['name']}, {gpu['total_bytes'] / GB:.1f} GB")
        )
    ram = info["devices"]["ram"]
    if ram:
        rows.append(
            ("cli.info.ram", f"{ram['used_bytes'] / GB:.1f} / {ram['total_bytes'] / GB:.1f} GB")
        )
    models = info["cached_models"]
    rows.append(("cli.info.models", ", ".join(models) if models else t("cli.info.none", lang)))
    labels = [t(key, lang) for key, _ in rows]
    width = max(len(label) for label in labels)
    print(f"Enfoads Studio {__version__}")
    for label, (_key, value) in zip(labels, rows):
        print(f"  {label:<{width}} : {value}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:

    from enfoads.attach import make_studio
    from enfoads.core.engine import EngineBusy
    from enfoads.core.settings import load_settings
    from enfoads.server.launch import serve_forever

    settings = load_settings()
    studio = make_studio(settings)
    try:
        studio.start()
    except EngineBusy as busy:  # one engine per data dir: name the running one
        studio.close()
        print(busy.message(settings.language), file=sys.stderr)
        return 1
    from enfoads.core.errors import EnfoadsError

    studio.warm_start()  # earlier sessions' placements, ready before the first request
    try:
        with studio:
            serve_forever(
                studio,
                host=args.host or settings.server_host,
                port=settings.server_port if args.port is None else args.port,
                token=args.token if args.token is not None else settings.server_token,
                public_url=args.public_url,
                tunnel=args.tunnel,
                ngrok_authtoken=settings.ngrok_authtoken or os.environ.get("NGROK_AUTHTOKEN", ""),
                parent=os.getppid() if args.exit_with_parent else None,
            )
    except EnfoadsError as exc:  # a tunnel that cannot open: say why, no traceback
        print(exc.message(settings.language), file=sys.stderr)
        return 1
    return 0


def find_notebook() -> Any:
    """The studio notebook: beside the package in a checkout, or in the installed share dir."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for candidate in (
        here.parent / "notebooks" / "EnfoadsStudio.ipynb",
        Path(sys.prefix) / "share" / "enfoads" / "EnfoadsStudio.ipynb",
    ):
        if candidate.is_file():
            return candidate
    raise SystemExit("EnfoadsStudio.ipynb not found (run from a checkout of the repository)")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cmd_studio(args: argparse.Namespace) -> int:
    """The dashboard: one engine (``enfoads serve``, started here unless one already runs on
    the data dir) and Voila serving the notebook on localhost; each page's kernel attaches to
    the engine and loads no model. Closed pages' kernels are culled."""
    import subprocess

    from enfoads.core.i18n import t
    from enfoads.core.inventory import model_label
    from enfoads.core.settings import load_settings

    notebook = find_notebook()
    settings = load_settings()
    lang = settings.language
    env = dict(os.environ, ENFOADS_DATA_DIR=str(settings.data_dir))
    engine_proc = None
    studio = _attach_when_ready(settings, None, lang, timeout=args.start_timeout)
    if studio is None:
        print(t("cli.studio.starting", lang), flush=True)
        engine_proc = start_engine(args.engine_port or free_port(), env)
        studio = _attach_when_ready(settings, engine_proc, lang, timeout=args.start_timeout)
        if studio is None:
            from enfoads.core.media import stop_process

            stop_process(engine_proc, 30)
            return 1
    url = f"http://127.0.0.1:{args.port}/"
    print(f"Enfoads Studio {__version__} — {url}")
    print(t("cli.studio.data", lang, path=settings.data_dir))
    print(t("cli.studio.engine", lang, engine=studio.engine_info.describe(lang)))
    for model in studio.missing_models():
        print(t("cli.studio.missing", lang, model=model_label(model, lang)))
    studio.close()
    cmd = voila_command(notebook, args.port, args.cull_after)
    import signal

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM: the children are stopped below, not orphaned

    signal.signal(signal.SIGTERM, stop)
    voila = None
    try:
        voila = subprocess.Popen(cmd, env=env)
        return voila.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        from enfoads.core.media import stop_process

        for child in (voila, engine_proc):
            stop_process(child, 30)


def start_engine(port: int, env: dict[str, str]) -> Any:
    """``enfoads serve`` on loopback for the dashboard, ended with this process."""
    import subprocess

    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--exit-with-parent"]
    return subprocess.Popen([sys.executable, "-m", "enfoads.cli", *serve], env=env)


def voila_command(notebook: Any, port: int, cull_after: int) -> list[str]:
    """Voila serving the notebook on localhost, its page kernels culled once gone."""
    return [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={port}",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        "--theme=light",
        "--show_tracebacks=False",
        f"--Voila.root_dir={notebook.parent}",
        # A closed page's kernel (small: it attaches, it loads no model) is shut down at once
        # when the page says so, else once its page has been gone (or it idle) this long,
        # however many events it still receives (server/page_kernels.py); an open page keeps
        # its kernel.
        "--VoilaConfiguration.multi_kernel_manager_class="
        "enfoads.server.page_kernels.PageKernelManager",
        f"--PageKernelManager.cull_idle_timeout={cull_after}",
        f"--PageKernelManager.cull_interval={max(1, cull_after // 4)}",
        "--PageKernelManager.cull_connected=False",
    ]


def _attach_when_ready(settings: Any, proc: Any, lang: str, timeout: float) -> Any:
    """The data dir's engine, attached, once it answers; None when there is none (``proc`` is
    None: nothing started yet) or when the engine ``proc`` exits or stays silent past
    ``timeout`` (said in the user's language). An engine that has claimed the data dir but
    not yet published its address, or does not answer yet, is waited for: on a busy 2-core
    machine that takes seconds, and it is no failure."""
    import time

    from enfoads.attach import attach
    from enfoads.core.engine import EngineUnreachable
    from enfoads.core.i18n import t

    start = time.monotonic()
    said = start
    while True:
        if proc is not None and proc.poll() is not None:
            print(t("cli.studio.engine_exited", lang, code=proc.returncode), file=sys.stderr)
            return None
        try:
            studio = attach(settings, wait_s=1.0)
        except EngineUnreachable as waiting:
            studio, reason = None, waiting
        else:
            if studio is None and proc is None:
                return None  # no engine on the data dir: the caller starts one
            reason = None
        if studio is not None:
            return studio
        now = time.monotonic()
        if now - start > timeout:
            detail = reason.message(lang) if reason is not None else ""
            print(
                t("cli.studio.engine_silent", lang, s=round(timeout), detail=detail),
                file=sys.stderr,
            )
            return None
        if now - said >= 5:  # a line every 5 s, so a slow start never looks like a hang
            said = now
            print(t("cli.studio.still_starting", lang, s=round(now - start)), flush=True)
        time.sleep(0.25)


def cmd_import_assets(args: argparse.Namespace) -> int:
    """Import the seed backend's assets.json into the vault (through the running engine, if
    one serves this data dir)."""
    from pathlib import Path

    import enfoads
    from enfoads.core.errors import EnfoadsError
    from enfoads.core.i18n import t
    from enfoads.core.settings import load_settings

    settings = load_settings()
    lang = settings.language
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(
            t("cli.import.unreadable", lang, file=args.file, reason=exc.strerror or "?"),
            file=sys.stderr,
        )
        return 1
    studio = enfoads.connect(settings, warm=False)  # one command: no model to prepare
    try:
        report = studio.import_seed_json(data)
    except EnfoadsError as exc:
        print(exc.message(lang), file=sys.stderr)
        return 1
    finally:
        studio.close()
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "assets"}, indent=2))
    else:
        print(
            t(
                "cli.import.done",
                lang,
                imported=report["imported"],
                skipped=report["skipped"],
                existing=report["already_there"],
            )
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Publish-ready files of a campaign (through the running engine, if one serves this data
    dir): one ZIP per platform written into ``--out``, each file's verdict printed."""
    from pathlib import Path

    import enfoads
    from enfoads.core.errors import EnfoadsError
    from enfoads.core.i18n import t
    from enfoads.core.settings import load_settings

    settings = load_settings()
    lang = settings.language
    studio = enfoads.connect(settings, warm=False)  # one command: no model to prepare
    try:
        job = studio.export_campaign(asset_ids=args.asset_ids, platforms=args.platform)
        done = studio.wait_job(job.id, args.timeout)
        if not done.state.finished or done.error:
            print(
                done.error or t("cli.export.unfinished", lang, seconds=args.timeout),
                file=sys.stderr,
            )
            return 1
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for note in done.result["notices"]:
            print(note)
        for export in done.result["exports"]:
            target = out / f"{export['platform']}.zip"
            target.write_bytes(studio.asset_bytes(export["asset_id"]))
            print(t("cli.export.zip", lang, platform=export["platform"], path=target))
            for row in export["files"]:
                verdict = "✔" if row["passed"] else "✘ " + "; ".join(row["failures"])
                print(f"  {row['file']}: {verdict}")
    except EnfoadsError as exc:
        print(exc.message(lang), file=sys.stderr)
        return 1
    finally:
        studio.close()
    return 0


def _variants_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The job kind and body of an ``enfoads variants`` step; a file it cannot read is named."""
    from pathlib import Path

    from enfoads.core.errors import InvalidInput
    from enfoads.core.i18n import Reason

    if args.action == "propose":
        fields = ("product", "offer", "price", "tone")
        return "propose_copy", {k: getattr(args, k) for k in fields}
    if args.action == "render":
        try:
            return "render_variants", json.loads(Path(args.brief).read_text(encoding="utf-8"))
        except OSError as exc:
            reason = Reason("reason.unreadable_file")
            raise InvalidInput("error.invalid", field="brief", reason=reason) from exc
        except ValueError as exc:
            reason = Reason("reason.not_json")
            raise InvalidInput("error.invalid", field="brief", reason=reason) from exc
    try:
        csv = Path(args.csv).read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = Reason("reason.unreadable_file")
        raise InvalidInput("error.invalid", field="csv", reason=reason) from exc
    return "import_results", {"brief_id": args.brief_id, "csv": csv}


def _print_variants(kind: str, result: dict[str, Any], studio: Any, lang: str) -> None:
    from enfoads.core.i18n import t

    if kind == "propose_copy":
        for label, items in (
            ("cli.variants.headlines", result["headlines"]),
            ("cli.variants.ctas", result["ctas"]),
        ):
            print(t(label, lang))
            for item in items:
                print(f"  {item}")
        for note in result["notices"]:
            print(note)
    elif kind == "render_variants":
        print(t("cli.variants.brief", lang, brief_id=result["brief_id"]))
        for variant_id, variant in sorted(result["variants"].items()):
            print(f"  {variant_id}: {variant['headline']} · {variant['cta']}")
            for placement, asset_id in variant["files"].items():
                print(f"    {placement}: {studio.asset_path(asset_id)}")
    else:
        print(result["verdict"])
        for row in result["variants"]:
            print(
                f"  {row['variant']}: CTR {100 * row['ctr']:.2f} % · "
                f"P(best) {100 * row['p_best_ctr']:.0f} %"
            )


def cmd_variants(args: argparse.Namespace) -> int:
    """A/B variants (through the running engine, if one serves this data dir): ``propose``
    prints copy to edit, ``render`` a brief (JSON) into variants, ``results`` reads a platform's
    per-ad CSV back into the verdict."""
    import enfoads
    from enfoads.core.errors import EnfoadsError
    from enfoads.core.i18n import t
    from enfoads.core.settings import load_settings

    settings = load_settings()
    lang = settings.language
    studio = enfoads.connect(settings, warm=False)
    try:
        kind, body = _variants_request(args)
        done = studio.wait_job(studio.submit(kind, body).id, args.timeout)
        if not done.state.finished or done.error:
            unfinished = t("cli.export.unfinished", lang, seconds=args.timeout)
            print(done.error or unfinished, file=sys.stderr)
            return 1
        if args.json:
            print(json.dumps(done.result, ensure_ascii=False, indent=2))
        else:
            _print_variants(kind, done.result, studio, lang)
    except EnfoadsError as exc:
        print(exc.message(lang), file=sys.stderr)
        return 1
    finally:
        studio.close()
    return 0


def cmd_reindex_assets(args: argparse.Namespace) -> int:
    """The vault again for stored files no asset uses (through the running engine, if one
    serves this data dir)."""
    import enfoads
    from enfoads.core.errors import EnfoadsError
    from enfoads.core.i18n import t
    from enfoads.core.settings import load_settings

    settings = load_settings()
    lang = settings.language
    studio = enfoads.connect(settings, warm=False)  # one command: no model to prepare
    try:
        report = studio.reindex_assets(lang)
    except EnfoadsError as exc:
        print(exc.message(lang), file=sys.stderr)
        return 1
    finally:
        studio.close()
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "assets"}, indent=2))
    else:
        print(
            t(
                "cli.reindex.done",
                lang,
                **{k: report[k] for k in ("recovered", "skipped", "thumbnails")},
            )
        )
        for item in report["skipped_reasons"]:
            print(f"  {item['file']}: {item['reason']}")
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    """Print the API's OpenAPI schema (the TypeScript client's types are generated from it)."""
    import tempfile

    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio
    from enfoads.server.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        studio = Studio(load_settings(data_dir=tmp, device="cpu"))
        schema = create_app(studio).api.openapi()
        studio.close()
    print(json.dumps(schema, indent=2, sort_keys=True))
    return 0


def cmd_redis(args: argparse.Namespace) -> int:
    """A Redis for a one-machine demo of the distributed backend, in the foreground; stopped
    with it (Ctrl+C or SIGTERM)."""
    import signal
    import time
    from pathlib import Path

    from enfoads.core.i18n import t
    from enfoads.core.settings import load_settings
    from enfoads.testing.redis import PortInUse, RedisServer

    settings = load_settings()
    folder = Path(args.dir) if args.dir else settings.data_dir / "redis"
    try:
        server = RedisServer(folder, args.port).start()
    except PortInUse:
        print(t("cli.redis.port_in_use", settings.language, port=args.port), file=sys.stderr)
        return 1

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"Redis: {server.url}  (ENFOADS_REDIS_URL={server.url})", flush=True)
    try:
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """One GPU worker of the distributed backend (Celery + Redis), in the foreground."""
    from enfoads.workers.worker import main as worker_main

    return worker_main(args.gpu, args.queues, (args.log_level or "INFO").upper())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enfoads", description="Enfoads Studio")
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING…")
    sub = parser.add_subparsers(dest="command", required=True)
    _studio_parser(sub)
    info = sub.add_parser("info", help="settings, data dir, devices, budgets, cached models")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)
    _serve_parser(sub)
    sub.add_parser("openapi", help="print the API's OpenAPI schema").set_defaults(func=cmd_openapi)
    importer = sub.add_parser(
        "import-assets", help="import the seed backend's assets.json into the vault"
    )
    importer.add_argument("file", help="the assets.json file (entries with inline data: URLs)")
    importer.add_argument("--json", action="store_true", help="machine-readable output")
    importer.set_defaults(func=cmd_import_assets)
    from enfoads.core.pipelines.export_presets import PLATFORMS

    export = sub.add_parser(
        "export", help="publish-ready files of a campaign's images and videos, one ZIP per platform"
    )
    export.add_argument("asset_ids", nargs="+", help="the images and videos to export")
    export.add_argument(
        "--platform",
        action="append",
        required=True,
        choices=PLATFORMS,
        help="a platform to export for (repeat it for several)",
    )
    export.add_argument("--out", default=".", help="where the ZIPs go (default: here)")
    export.add_argument("--timeout", type=float, default=3600, help="seconds to wait for it")
    export.set_defaults(func=cmd_export)
    variants = sub.add_parser(
        "variants", help="A/B variants: propose copy, render a brief, read results back"
    )
    steps = variants.add_subparsers(dest="action", required=True)
    propose = steps.add_parser("propose", help="headlines and calls to action to edit")
    propose.add_argument("product", help="the product's name")
    propose.add_argument("--offer", default="", help="e.g. '-20 %% esta semana'")
    propose.add_argument("--price", default="", help="e.g. '9,90 €'")
    propose.add_argument(
        "--tone", default="friendly", choices=("friendly", "premium", "urgent", "playful")
    )
    render = steps.add_parser(
        "render", help="a brief (JSON: POST /api/briefs' body) into variants at every placement"
    )
    render.add_argument("brief", help="the brief's JSON file")
    results = steps.add_parser("results", help="a platform's per-ad CSV into the verdict")
    results.add_argument("brief_id", help="the brief's asset id (bri_…)")
    results.add_argument("csv", help="the report exported from Meta Ads Manager or Google Ads")
    for step in (propose, render, results):
        step.add_argument("--json", action="store_true", help="machine-readable output")
        step.add_argument("--timeout", type=float, default=3600, help="seconds to wait")
    variants.set_defaults(func=cmd_variants)
    reindex = sub.add_parser(
        "reindex-assets",
        help="bring back into the vault stored files no asset uses (a lost or replaced database)",
    )
    reindex.add_argument("--json", action="store_true", help="machine-readable output")
    reindex.set_defaults(func=cmd_reindex_assets)
    worker = sub.add_parser("worker", help="a Celery worker for one GPU (ENFOADS_QUEUE=celery)")
    worker.add_argument(
        "--gpu",
        type=int,
        default=None,
        help="the GPU this process owns (CUDA_VISIBLE_DEVICES); none: CPU",
    )
    worker.add_argument(
        "--queues",
        default="all",
        help="the queues it takes, comma-separated (images, faces, video: each job kind's "
        "JobSpec names its queue); default: all",
    )
    worker.set_defaults(func=cmd_worker)
    redis_cmd = sub.add_parser("redis", help="a Redis on loopback for a one-machine demo")
    redis_cmd.add_argument("--port", type=int, default=6379)
    redis_cmd.add_argument("--dir", help="its data folder (default: redis/ in the data dir)")
    redis_cmd.set_defaults(func=cmd_redis)
    return parser


def _studio_parser(sub: Any) -> None:
    studio = sub.add_parser("studio", help="the dashboard: Voila on localhost")
    studio.add_argument("--port", type=int, default=8866)
    studio.add_argument(
        "--engine-port",
        type=int,
        default=0,
        help="the engine's API port (default: a free one; an engine already "
        "running on the data dir is used as it is)",
    )
    studio.add_argument(
        "--cull-after",
        type=int,
        default=60,
        help="seconds before the kernel of a page closed without saying so is shut down",
    )
    studio.add_argument(
        "--start-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the engine to answer before giving up",
    )
    studio.set_defaults(func=cmd_studio)


def _serve_parser(sub: Any) -> None:
    serve = sub.add_parser("serve", help="the HTTP + Socket.IO API in the foreground")
    serve.add_argument("--host", help="default ENFOADS_SERVER_HOST (127.0.0.1)")
    serve.add_argument("--port", type=int, help="default ENFOADS_SERVER_PORT (5000); 0: a free one")
    serve.add_argument("--token", help="bearer token (default: a new one, printed at start)")
    serve.add_argument(
        "--public-url",
        help="the URL clients use, when you put a proxy in front: "
        "the token is then required for every request",
    )
    serve.add_argument(
        "--tunnel",
        nargs="?",
        const="auto",
        choices=["auto", "cloudflare", "ngrok"],
        help="also open a public URL for the React client: a Cloudflare quick "
        "tunnel (no account), or ngrok when NGROK_AUTHTOKEN is set",
    )
    serve.add_argument(
        "--exit-with-parent", action="store_true", help=argparse.SUPPRESS
    )  # the engine `enfoads studio` starts for itself
    serve.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # Spanish text on a C-locale terminal: no crash
        if "utf" not in (getattr(stream, "encoding", "") or "").lower():
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level or "WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from enfoads.core.errors import EnfoadsError, InvalidSetting
    from enfoads.core.settings import ENV_PREFIX

    lang = os.environ.get(f"{ENV_PREFIX}LANGUAGE", "es")
    lang = lang if lang in ("es", "en") else "es"
    try:
        return args.func(args)
    except InvalidSetting as exc:  # a bad ENFOADS_ variable or settings file: say which
        print(exc.message(lang), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except EnfoadsError as exc:  # said in the user's words
        print(exc.message(lang), file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a user's command ends in one line, never a traceback
        return _report_crash(args.command, exc, lang)


def _report_crash(command: str, exc: BaseException, lang: str) -> int:
    """One line in the user's language; the traceback goes to a file for whoever debugs."""
    import tempfile
    import traceback
    from pathlib import Path

    from enfoads.core.i18n import t

    log = Path(tempfile.gettempdir()) / f"enfoads-{command}-{os.getpid()}.log"
    try:
        log.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError:
        log = Path("-")
    reason = type(exc).__name__
    print(t("cli.failed", lang, command=command, reason=reason, log=log), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
