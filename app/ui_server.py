"""``python -m app.ui_server run app/main.py …``: Streamlit's own command line, made to stay on
this machine.

Streamlit asks https://checkip.amazonaws.com for the machine's public address when it binds
every interface (for its startup banner) and whenever a WebSocket arrives from an unknown
origin (as one more allowed origin). Neither is needed here, and both are requests leaving the
machine (the second one a remote page can trigger), so the lookup answers "unknown" instead.
"""

from __future__ import annotations

from streamlit import net_util


def _no_external_ip() -> None:
    """Stands in for ``net_util.get_external_ip``: this machine's public address is unknown."""
    return None


def offline() -> None:
    """Replace Streamlit's external-address lookup (it reads ``net_util.get_external_ip`` at
    each call, so replacing the module attribute is enough)."""
    if not callable(getattr(net_util, "get_external_ip", None)):
        raise RuntimeError("streamlit.net_util.get_external_ip is gone: re-check which requests Streamlit makes")
    net_util.get_external_ip = _no_external_ip  # type: ignore[assignment]


if __name__ == "__main__":
    offline()
    from streamlit.web.cli import main

    main(prog_name="streamlit")
