import json
import subprocess
import sys


def test_enfoads_info_reports_the_settings(tmp_path):
    env = {
        "ENFOADS_DATA_DIR": str(tmp_path),
        "ENFOADS_DEVICE": "cpu",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
    }
    out = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "info", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout)
    assert info["data_dir"] == str(tmp_path.resolve())
    assert info["device"] == "cpu"
    assert info["budgets"] == {"gpu_gb": 12.0, "ram_gb": 12.7}
    assert info["devices"]["ram"]["total_bytes"] > 0
    human = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "info"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "carpeta de datos" in human and str(tmp_path.resolve()) in human  # Spanish first
    english = subprocess.run(
        [sys.executable, "-m", "enfoads.cli", "info"],
        env={**env, "ENFOADS_LANGUAGE": "en"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "data dir" in english and "carpeta" not in english


def cli_env(tmp_path, **extra):
    import os

    return dict(
        os.environ,
        ENFOADS_DATA_DIR=str(tmp_path / "data"),
        ENFOADS_DEVICE="cpu",
        ENFOADS_LANGUAGE="es",
        HF_HUB_OFFLINE="1",
        **extra,
    )


def test_the_studio_waits_for_an_engine_that_has_claimed_the_data_dir_but_not_published(
    tmp_path, capsys
):
    """`make studio` crashed on a 2-core machine in the seconds between the engine claiming
    the data dir and publishing its address (EngineUnreachable, an English traceback). The
    launcher now waits for the engine it started until it answers."""
    import threading

    from enfoads.attach import serve_engine_api
    from enfoads.cli import _attach_when_ready
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    settings = load_settings(data_dir=tmp_path / "data", device="cpu", language="es")
    engine = Studio(settings).start()  # claimed, no address yet: as `enfoads serve` starting
    starting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        threading.Timer(2.0, serve_engine_api, (engine,)).start()  # published 2 s later
        attached = _attach_when_ready(settings, starting, "es", timeout=60)
        assert attached is not None and attached.engine_info.url.startswith("http://127.0.0.1:")
        attached.close()
        # An engine that stays silent: a line in the user's language, no exception.
        other = tmp_path / "other"
        silent = Studio(load_settings(data_dir=other, device="cpu", language="es")).start()
        try:
            settings_other = load_settings(data_dir=other, device="cpu", language="es")
            assert _attach_when_ready(settings_other, starting, "es", timeout=1.5) is None
            assert "El motor del estudio no respondió en 2 s" in capsys.readouterr().err
        finally:
            silent.close()
        # The engine process that exits while starting is named, with its exit code.
        starting.kill()
        starting.wait()
        assert _attach_when_ready(settings_other, starting, "es", timeout=30) is None
        assert "se detuvo al arrancar" in capsys.readouterr().err
    finally:
        starting.kill()
        engine.close()


def test_a_command_that_fails_says_so_in_one_line_without_a_traceback(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    seed = tmp_path / "assets.json"
    seed.write_text("[]")
    for command in (["import-assets", str(seed)], ["serve", "--port", "0"]):
        out = subprocess.run(
            [sys.executable, "-m", "enfoads.cli", *command],
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 1, out
        assert "Traceback" not in out.stderr, out.stderr
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Enfoads no pudo terminar"), out.stderr


def test_enfoads_redis_stops_with_sigterm_and_a_second_one_names_the_busy_port(tmp_path):
    import signal

    import psutil
    import pytest

    from enfoads.testing.redis import free_port, redis_binary

    if redis_binary() is None:
        pytest.skip("no redis-server")
    port = free_port()
    command = [sys.executable, "-m", "enfoads.cli", "redis", "--port", str(port)]
    first = subprocess.Popen(
        command, env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = first.stdout.readline()
        assert f"@127.0.0.1:{port}/0" in line and "redis://:" in line  # with its password
        import redis

        url = line.split()[1]
        assert redis.Redis.from_url(url).ping()
        with pytest.raises(redis.exceptions.AuthenticationError):  # none without it
            redis.Redis(port=port, socket_timeout=5).ping()
        servers = [p for p in psutil.Process(first.pid).children() if "redis" in p.name()]
        assert servers
        second = subprocess.run(
            command, env=cli_env(tmp_path), capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert f"El puerto {port} ya está en uso" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None  # the first one still serves
        first.send_signal(signal.SIGTERM)
        assert first.wait(30) == 0
        _gone, alive = psutil.wait_procs(servers, timeout=20)
        assert alive == []  # its redis-server went with it
    finally:
        if first.poll() is None:
            first.kill()


def test_enfoads_variants_proposes_copy_and_reads_results_back(tmp_path):
    """``enfoads variants propose`` and ``results`` as a user types them; a bad file is named."""
    from enfoads.core.settings import load_settings
    from enfoads.core.studio import Studio

    env = cli_env(tmp_path)
    run = [sys.executable, "-m", "enfoads.cli", "variants"]
    said = subprocess.run(
        [*run, "propose", "Café de Chiapas", "--offer", "-20 %", "--tone", "urgent"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert said.returncode == 0, said.stderr
    assert said.stdout.startswith("Titulares:\n") and "  -20 %: solo esta semana" in said.stdout
    assert "Llamadas a la acción:\n  Compra ya" in said.stdout
    with Studio(load_settings(data_dir=tmp_path / "data", device="cpu")) as studio:
        record = {
            "brief": {"product": "Café"},
            "variants": {
                "ab12-1A1": {"levels": {"concept": 1, "headline": "A", "cta": 1}},
                "ab12-1B1": {"levels": {"concept": 1, "headline": "B", "cta": 1}},
            },
        }
        brief = studio.assets.add_bytes(json.dumps(record).encode(), "brief", ext="json")
    report = tmp_path / "meta.csv"
    report.write_text(
        "Nombre del anuncio;Impresiones;Clics\nab12-1A1;20.000;90\nab12-1B1;20.000;300\n"
    )
    out = subprocess.run(
        [*run, "results", brief.id, str(report)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "La variante ab12-1B1 gana" in out.stdout and "ab12-1B1: CTR 1.50 %" in out.stdout
    missing = subprocess.run(
        [*run, "render", str(tmp_path / "no-such-brief.json")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "El campo 'brief' no es válido: no se puede leer el archivo" in missing.stderr
