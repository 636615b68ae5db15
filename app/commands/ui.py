"""``sybilscope ui [--port N] [--host H]``: the Streamlit investigation app on this workspace and store.

Streamlit runs as a child process (its server owns the event loop); the workspace and store
reach the app through ``SYBILSCOPE_WORKSPACE`` / ``SYBILSCOPE_STORE``, which ``Settings`` reads.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import click

from app.commands.common import CommandError, common_options
from graph.settings import Settings

APP = Path(__file__).resolve().parent.parent / "main.py"
# Host names a browser uses for a loopback server (server.allowedHosts when bound there).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def streamlit_command(port: int, address: str | None = None) -> list[str]:
    """The command line serving the app: Streamlit (through ``app.ui_server``, which keeps it
    from asking the internet for this machine's address) bound to ``address`` (127.0.0.1 when
    omitted), with CORS and XSRF protection, no telemetry, no static folder, and, on
    loopback, only loopback Host headers (a DNS-rebinding page gets nothing)."""
    host = address or "127.0.0.1"
    cmd = [
        sys.executable, "-m", "app.ui_server", "run", str(APP),
        "--server.port", str(port),
        "--server.address", host,
        "--server.headless", "true",
        "--server.enableCORS", "true",
        "--server.enableXsrfProtection", "true",
        "--server.enableStaticServing", "false",
        "--global.developmentMode", "false",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]
    if is_loopback(host):
        for name in LOOPBACK_NAMES:
            cmd += ["--server.allowedHosts", name]
    return cmd


def app_environment(settings: Settings, base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the resolved workspace and store exported."""
    env = dict(os.environ if base is None else base)
    env["SYBILSCOPE_WORKSPACE"] = str(settings.workspace)
    env["SYBILSCOPE_STORE"] = str(settings["store"])
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    return env


def exposure_warning(host: str, mode_kind: str) -> str | None:
    """What to tell the operator about who can reach the UI, or None on loopback."""
    if is_loopback(host):
        return None
    if mode_kind == "single":
        return (f"WARNING: the UI listens on {host} with no sign-in configured: anyone who can reach "
                "this port can read every cluster and record decisions in the local user's name. "
                "Set SYBILSCOPE_UI_USERS_FILE (or the identity header and proxy secret), or bind 127.0.0.1.")
    if mode_kind == "users":
        return (f"WARNING: the UI listens on {host}; passwords cross the network in clear unless a "
                "TLS proxy is in front of it.")
    return (f"WARNING: the UI listens on {host}; keep it reachable only from the authenticating proxy.")


# --- Running the child ---------------------------------------------------------------------

# After passing a stop signal on, how long the child has to exit before it is killed.
STOP_GRACE = 10.0


def serve(cmd: list[str], env: dict[str, str]) -> int | None:
    """Run the Streamlit child until it exits; SIGTERM, SIGINT and SIGHUP sent to this process
    are passed on to it, and it is waited for (killed if it lingers ``STOP_GRACE`` seconds), so
    stopping ``sybilscope ui`` never leaves a server listening. Returns the child's exit
    status, or None when it stopped because it was told to."""
    # Its own process group: Ctrl-C in a terminal reaches only this process, which passes it
    # on once (the child would otherwise get it twice).
    child = subprocess.Popen(cmd, env=env, process_group=0)
    stop_at: list[float] = []

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)
        if not stop_at:
            stop_at.append(time.monotonic() + STOP_GRACE)

    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {signum: signal.signal(signum, pass_on) for signum in forwarded}
    try:
        while True:
            try:
                code = child.wait(timeout=0.5)
                return None if stop_at else code
            except subprocess.TimeoutExpired:
                if stop_at and time.monotonic() > stop_at[0]:
                    child.kill()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.poll() is None:  # only on an error in this process
            child.kill()
            child.wait()




@click.command("ui")
@common_options
@click.option("--port", type=int, default=None, help="Port to serve on [default: setting ui_port].")
@click.option("--host", "--address", "host", default=None,
              help="Address to bind [default: setting ui_host, 127.0.0.1]; 0.0.0.0 opens it to the network.")
def ui(settings: Settings, port: int | None, host: str | None) -> None:
    """The Streamlit investigation app on this workspace and store."""
    from app import auth

    chosen = port or int(settings["ui_port"])
    bind = host or str(settings["ui_host"])
    try:
        mode = auth.mode_from_settings(settings)
    except auth.AuthConfigError as exc:
        raise CommandError(f"the UI refuses to start: {exc}") from exc
    warning = exposure_warning(bind, mode.kind)
    if warning:
        click.echo(warning, err=True)
    shown = f"[{bind}]" if ":" in bind else bind
    click.echo(f"Sybilscope UI on http://{shown}:{chosen} (workspace {settings.workspace}, store {settings['store']})", err=True)
    code = serve(streamlit_command(chosen, bind), app_environment(settings))
    if code not in (None, 0, -2, 130):
        raise CommandError(f"streamlit exited with status {code}")
