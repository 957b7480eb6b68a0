"""pycolonies from PyPI against a 3-node testnet: any node serves the whole API.

The environment comes from testnet/env.sh (keys, colony `dev`, executor type) plus
TESTNET_NODES="host:port host:port host:port" (n1, n2, n3).
"""
import os

import pytest
from pycolonies import Colonies, func_spec

NODES = os.environ.get("TESTNET_NODES", "").split()
pytestmark = pytest.mark.skipif(len(NODES) < 3, reason="needs TESTNET_NODES with 3 nodes")


def client(i):
    host, port = NODES[i].rsplit(":", 1)
    return Colonies(host, int(port))


def test_submit_on_one_node_assign_on_another_close_on_a_third():
    colony = os.environ["COLONIES_COLONY_NAME"]
    key = os.environ["COLONIES_PRVKEY"]
    spec = func_spec(func="echo", args=["mesh"], colonyname=colony,
                     executortype=os.environ["COLONIES_EXECUTOR_TYPE"], maxexectime=60)
    submitted = client(0).submit_func_spec(spec, key)
    assert submitted.state == 0
    assigned = client(2).assign(colony, 10, key)
    assert assigned.processid == submitted.processid
    assert assigned.state == 1
    client(1).close(assigned.processid, ["done"], key)
    for i in range(3):
        # Reads on any node see the close: a node that lags catches up before answering.
        process = client(i).get_process(submitted.processid, key)
        assert process.state == 2
        assert process.output == ["done"]


def test_every_node_lists_the_same_colony_and_executor():
    colony = os.environ["COLONIES_COLONY_NAME"]
    key = os.environ["COLONIES_PRVKEY"]
    names = [sorted(e["executorname"] for e in client(i).list_executors(colony, key))
             for i in range(3)]
    assert names[0] == names[1] == names[2]
    assert os.environ["COLONIES_EXECUTOR_NAME"] in names[0]
