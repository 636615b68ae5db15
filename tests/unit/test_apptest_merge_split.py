"""The case panel's merge and split, run headless: the success message names the cluster and a
split's message opens the new one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from graph import cases
from graph.schema import Label
from graph.stores.embedded import EmbeddedStore
from graph.workspace import templates_path
from tests.unit.test_apptest import APP, _open_cluster, _run
from tests.unit.test_apptest import world as ui_world  # noqa: F401 - the fixture


@pytest.fixture()
def world(ui_world: EmbeddedStore) -> EmbeddedStore:  # noqa: F811
    """The UI world, whose clusters no detection run figured: a merge or split rebuilds the
    figure context from the store and staging as detection would, and detection reads the
    staged templates' MinHashes, which the UI fixture's templates file does not have."""
    templates_path(Path(os.environ["SYBILSCOPE_WORKSPACE"])).unlink()
    return ui_world


def test_split_names_the_new_cluster_and_opens_it(world: EmbeddedStore) -> None:
    at = _open_cluster(_run(AppTest.from_file(APP, default_timeout=60)), "c-ring")
    at.multiselect(key="split_accounts").set_value(["r002", "r003"])
    at.text_input(key="split_rationale").input("another card from May on")
    at.button(key="split_apply").click()
    _run(at)
    (event,) = cases.audit_trail(world, action="split")
    new = event.after["new_cluster"]
    node = world.get_node(Label.CLUSTER, new)
    assert node is not None and node.props["size"] == 2 and node.props["exchanges"] == 6
    parent = world.get_node(Label.CLUSTER, "c-ring")
    assert parent is not None
    (message,) = [s.value for s in at.success]
    assert message.startswith(f"Split 2 accounts off c-ring into the new cluster {new}: 2 accounts, 6 exchanges, "
                              f"score {node.props['score']:.2f}")
    assert f"c-ring now has {parent.props['size']} accounts" in message
    at.button(key=f"flash_open_{new}").click()
    _run(at)
    assert at.title[0].value == f"Cluster {new}"


def test_merge_names_the_cluster_with_its_new_figures(world: EmbeddedStore) -> None:
    at = _open_cluster(_run(AppTest.from_file(APP, default_timeout=60)), "c-ring")
    at.selectbox(key="merge_other").set_value("c-benign")
    at.text_input(key="merge_rationale").input("the students used the ring's card later")
    at.button(key="merge_apply").click()
    _run(at)
    node = world.get_node(Label.CLUSTER, "c-ring")
    assert node is not None and node.props["size"] == 6
    (message,) = [s.value for s in at.success]
    assert message.startswith(f"Merged c-benign into c-ring: now 6 accounts, {node.props['exchanges']} exchanges, "
                              f"score {node.props['score']:.2f}")
    # the header shows the refigured cluster, and the merged one (the world's only other) is
    # no longer offered to absorb
    assert [m.value for m in at.metric if m.label == "Accounts"] == ["6"]
    assert "merge_other" not in {s.key for s in at.selectbox}
