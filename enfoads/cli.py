"""``enfoads``: the command line. Arguments are parsed here, in ``main()``, never at import."""

from __future__ import annotations

import argparse
import json
import logging
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
    for secret in ("server_token", "ngrok_authtoken"):  # never print a secret in full
        if getattr(settings, secret):
            info["settings"][secret] = getattr(settings, secret)[:4] + "…"
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"Enfoads Studio {__version__}")
    print(f"  data dir     : {info['data_dir']}")
    print(f"  database     : {info['database']}")
    print(f"  device       : {info['device']}")
    print(
        f"  budgets      : GPU {settings.gpu_budget_gb:.1f} GB, RAM {settings.ram_budget_gb:.1f} GB"
    )
    for gpu in info["devices"]["gpus"]:
        print(f"  gpu {gpu['index']}        : {gpu['name']}, {gpu['total_bytes'] / GB:.1f} GB")
    ram = info["devices"]["ram"]
    if ram:
        print(f"  host RAM     : {ram['used_bytes'] / GB:.1f} / {ram['total_bytes'] / GB:.1f} GB")
    models = info["cached_models"]
    print(f"  cached models: {', '.join(models) if models else 'none yet'}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import os

    from enfoads.core.engine import EngineBusy
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio
    from enfoads.server.launch import serve_forever

    settings = load_settings()
    studio = Studio(settings)
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
    import os
    import subprocess

    from enfoads.attach import attach
    from enfoads.core.settings import load_settings

    notebook = find_notebook()
    settings = load_settings()
    env = dict(os.environ, ENFOADS_DATA_DIR=str(settings.data_dir))
    engine_proc = None
    studio = attach(settings, wait_s=0)
    if studio is None:
        port = args.engine_port or free_port()
        engine_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "enfoads.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--exit-with-parent",
            ],
            env=env,
        )
        studio = _wait_for_engine(settings, engine_proc)
        if studio is None:
            return 1
    url = f"http://127.0.0.1:{args.port}/"
    print(f"Enfoads Studio {__version__} — {url}")
    print(f"  datos / data: {settings.data_dir}")
    print(f"  motor / engine: {studio.engine_info.describe(settings.language)}")
    for model in studio.missing_models():
        print(
            f"  ⬇ falta / missing: {model['model']} ({model['capability']}); "
            "descárgalo en Ajustes / download it in Settings"
        )
    studio.close()
    cull = str(args.cull_after)
    cmd = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        f"--port={args.port}",
        "--no-browser",
        "--Voila.ip=127.0.0.1",
        "--theme=light",
        "--show_tracebacks=False",
        f"--Voila.root_dir={notebook.parent}",
        # A closed page's kernel (small: it attaches, it loads no model) is shut down once
        # idle for this long; one still open keeps its kernel.
        f"--MappingKernelManager.cull_idle_timeout={cull}",
        f"--MappingKernelManager.cull_interval={max(1, args.cull_after // 2)}",
        "--MappingKernelManager.cull_connected=False",
    ]
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


def _wait_for_engine(settings: Any, proc: Any, timeout: float = 120.0) -> Any:
    """The engine ``proc`` becomes, attached, once it has published its address."""
    import time

    from enfoads.attach import attach

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print("El motor no arrancó / the engine did not start (see above).", file=sys.stderr)
            return None
        studio = attach(settings, wait_s=1.0)
        if studio is not None:
            return studio
        time.sleep(0.2)
    print("El motor no respondió a tiempo / the engine did not answer in time.", file=sys.stderr)
    proc.terminate()
    return None


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
    """A Redis for a one-machine demo of the distributed backend, in the foreground."""
    import time
    from pathlib import Path

    from enfoads.core.settings import load_settings
    from enfoads.testing.redis import RedisServer

    folder = Path(args.dir) if args.dir else load_settings().data_dir / "redis"
    server = RedisServer(folder, args.port).start()
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
        default=120,
        help="seconds before a closed page's kernel is shut down",
    )
    studio.set_defaults(func=cmd_studio)
    info = sub.add_parser("info", help="settings, data dir, devices, budgets, cached models")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=cmd_info)
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
    sub.add_parser("openapi", help="print the API's OpenAPI schema").set_defaults(func=cmd_openapi)
    importer = sub.add_parser(
        "import-assets", help="import the seed backend's assets.json into the vault"
    )
    importer.add_argument("file", help="the assets.json file (entries with inline data: URLs)")
    importer.add_argument("--json", action="store_true", help="machine-readable output")
    importer.set_defaults(func=cmd_import_assets)
    worker = sub.add_parser("worker", help="a Celery worker for one GPU (ENFOADS_QUEUE=celery)")
    worker.add_argument(
        "--gpu",
        type=int,
        default=None,
        help="the GPU this process owns (CUDA_VISIBLE_DEVICES); none: CPU",
    )
    worker.add_argument(
        "--queues",
        default="images,faces,video",
        help="the capabilities' queues it takes (default: all)",
    )
    worker.set_defaults(func=cmd_worker)
    redis_cmd = sub.add_parser("redis", help="a Redis on loopback for a one-machine demo")
    redis_cmd.add_argument("--port", type=int, default=6379)
    redis_cmd.add_argument("--dir", help="its data folder (default: redis/ in the data dir)")
    redis_cmd.set_defaults(func=cmd_redis)
    return parser


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # Spanish text on a C-locale terminal: no crash
        if "utf" not in (getattr(stream, "encoding", "") or "").lower():
            stream.reconfigure(errors="backslashreplace")
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level or "WARNING", format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from enfoads.core.errors import InvalidSetting

    try:
        return args.func(args)
    except InvalidSetting as exc:  # a bad ENFOADS_ variable or settings file: say which
        import os

        from enfoads.core.settings import ENV_PREFIX

        lang = os.environ.get(f"{ENV_PREFIX}LANGUAGE", "es")
        print(exc.message(lang if lang in ("es", "en") else "es"), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
