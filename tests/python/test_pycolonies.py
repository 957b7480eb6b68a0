"""Black-box conformance tests: the published ColonyOS Python client against colonymesh.

Run through `tests/python/run.sh BINARY`, which starts `colonymesh dev` and exports
the COLONIES_* variables these tests read. Nothing here knows about colonymesh's
internals: if pycolonies 1.0.25 works against a real ColonyOS server, it must work
here too.

Independence: every test that touches a queue uses its own executor type
(`uuid`-named), registered and approved with the colony key, so tests can run in
any order and leftovers of one never feed another's `assign`. Only
`test_submit_assign_close` uses the dev executor's own type, and it is the only
test that submits processes of that type.
"""

import base64
import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
import requests
from crypto import Crypto  # pycolonies ships its crypto as a top-level module
from model import Workflow
from pycolonies import Colonies, ColoniesConnectionError, colonies_client, func_spec

# The node serves HTTPS/WSS (run.sh with COLONYMESH_TLS=1); pycolonies reads the same variable.
TLS = os.environ.get("COLONIES_SERVER_TLS") == "true"

WAITING = Colonies.WAITING
RUNNING = Colonies.RUNNING
SUCCESSFUL = Colonies.SUCCESSFUL
FAILED = Colonies.FAILED

# Executor states (ColonyOS pkg/core/executor.go).
EXECUTOR_PENDING = 0
EXECUTOR_APPROVED = 1

# pycolonies sends attributetype 1 (OUT) from add_attribute.
ATTRIBUTE_OUT = 1

# Long-poll timeout for assigns that must succeed. It is an upper bound, not a wait:
# a queued process is returned at once.
ASSIGN_TIMEOUT_S = 10

REQUIRED_ENV = (
    "COLONIES_SERVER_HOST",
    "COLONIES_SERVER_PORT",
    "COLONIES_SERVER_PRVKEY",
    "COLONIES_COLONY_NAME",
    "COLONIES_COLONY_PRVKEY",
    "COLONIES_EXECUTOR_NAME",
    "COLONIES_EXECUTOR_TYPE",
    "COLONIES_PRVKEY",
)


@dataclass(frozen=True)
class Env:
    # Keys and the client are left out of repr to keep failure reports readable.
    client: Colonies = field(repr=False)
    colonyname: str
    colony_prvkey: str = field(repr=False)
    executorname: str
    executortype: str
    prvkey: str = field(repr=False)
    server_prvkey: str = field(repr=False)
    api_url: str


@dataclass(frozen=True)
class Executor:
    name: str
    type: str
    prvkey: str = field(repr=False)
    id: str


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def new_key():
    key = Crypto().prvkey()
    return key, Crypto().id(key)


@pytest.fixture(scope="session")
def env():
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run these tests via tests/python/run.sh BINARY",
            pytrace=False,
        )
    client, colonyname, colony_prvkey, executorname, prvkey = colonies_client()
    host = os.environ["COLONIES_SERVER_HOST"]
    port = os.environ["COLONIES_SERVER_PORT"]
    return Env(
        client=client,
        colonyname=colonyname,
        colony_prvkey=colony_prvkey,
        executorname=executorname,
        executortype=os.environ["COLONIES_EXECUTOR_TYPE"],
        prvkey=prvkey,
        server_prvkey=os.environ["COLONIES_SERVER_PRVKEY"],
        api_url=f"{'https' if TLS else 'http'}://{host}:{port}/api",
    )


def register_executor(env, approve=True):
    """Adds an executor of a fresh type to the colony, signed with the colony key."""
    prvkey, executorid = new_key()
    executor = {
        "executorid": executorid,
        "executortype": unique("type"),
        "executorname": unique("executor"),
        "colonyname": env.colonyname,
    }
    added = env.client.add_executor(executor, env.colony_prvkey)
    assert added["executorid"] == executorid
    assert added["executorname"] == executor["executorname"]
    assert added["executortype"] == executor["executortype"]
    assert added["colonyname"] == env.colonyname
    assert added["state"] == EXECUTOR_PENDING
    if approve:
        env.client.approve_executor(env.colonyname, executor["executorname"], env.colony_prvkey)
    return Executor(executor["executorname"], executor["executortype"], prvkey, executorid)


@pytest.fixture
def executor(env):
    """An approved executor whose type no other test uses: its queue is this test's alone."""
    ex = register_executor(env)
    yield ex
    # Best-effort cleanup; removal is not what these tests check, and a failure
    # here must not hide the test's own result.
    try:
        env.client.remove_executor(env.colonyname, ex.name, env.colony_prvkey)
    except Exception:
        pass


def submit(env, executortype, priority=0, args=None, prvkey=None):
    spec = func_spec(
        "echo",
        args if args is not None else ["hello"],
        env.colonyname,
        executortype,
        priority=priority,
    )
    process = env.client.submit_func_spec(spec, prvkey or env.prvkey)
    assert process.state == WAITING
    assert not process.isassigned
    return process


def test_submit_assign_close(env):
    submitted = submit(env, env.executortype, args=["hello", 42])
    assert len(submitted.processid) == 64
    assert submitted.initiatorid == Crypto().id(env.prvkey)
    assert submitted.initiatorname == env.executorname
    assert submitted.spec.funcname == "echo"
    assert submitted.spec.args == ["hello", 42]
    assert submitted.spec.conditions.colonyname == env.colonyname
    assert submitted.spec.conditions.executortype == env.executortype

    assigned = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, env.prvkey)
    assert assigned.processid == submitted.processid
    assert assigned.state == RUNNING
    assert assigned.isassigned
    assert assigned.assignedexecutorid == Crypto().id(env.prvkey)

    env.client.close(submitted.processid, ["result"], env.prvkey)

    done = env.client.get_process(submitted.processid, env.prvkey)
    assert done.state == SUCCESSFUL
    assert done.output == ["result"]
    assert done.errors == []
    assert done.endtime >= done.starttime >= done.submissiontime


def test_fail(env, executor):
    submitted = submit(env, executor.type)
    assigned = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert assigned.processid == submitted.processid
    assert assigned.assignedexecutorid == executor.id

    env.client.fail(submitted.processid, ["boom"], executor.prvkey)

    failed = env.client.get_process(submitted.processid, env.prvkey)
    assert failed.state == FAILED
    assert failed.errors == ["boom"]


def test_only_assigned_executor_may_close(env, executor):
    submitted = submit(env, executor.type)
    env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    # The dev executor is an approved member but not the assignee.
    with pytest.raises(ColoniesConnectionError):
        env.client.close(submitted.processid, ["stolen"], env.prvkey)
    still_running = env.client.get_process(submitted.processid, env.prvkey)
    assert still_running.state == RUNNING
    env.client.close(submitted.processid, [], executor.prvkey)


def test_priority_ordering(env, executor):
    low = submit(env, executor.type, priority=0)
    high = submit(env, executor.type, priority=5)
    # prioritytime = submission_ns - priority * 1 day, so the later but
    # higher-priority process must be served first.
    assert high.prioritytime < low.prioritytime

    first = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert first.processid == high.processid
    second = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert second.processid == low.processid

    env.client.close(first.processid, [], executor.prvkey)
    env.client.close(second.processid, [], executor.prvkey)


def test_fifo_within_equal_priority(env, executor):
    submitted = [submit(env, executor.type, args=[i]) for i in range(3)]
    for expected in submitted:
        assigned = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
        assert assigned.processid == expected.processid
        env.client.close(assigned.processid, [], executor.prvkey)


def test_new_executor_must_be_approved(env):
    pending = register_executor(env, approve=False)
    try:
        listed = {e["executorname"]: e for e in env.client.list_executors(env.colonyname, env.prvkey)}
        assert listed[pending.name]["state"] == EXECUTOR_PENDING

        with pytest.raises(ColoniesConnectionError):
            env.client.assign(env.colonyname, 1, pending.prvkey)

        env.client.approve_executor(env.colonyname, pending.name, env.colony_prvkey)
        listed = {e["executorname"]: e for e in env.client.list_executors(env.colonyname, env.prvkey)}
        assert listed[pending.name]["state"] == EXECUTOR_APPROVED
        assert listed[pending.name]["executorid"] == pending.id

        submitted = submit(env, pending.type)
        assigned = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, pending.prvkey)
        assert assigned.processid == submitted.processid
        assert assigned.assignedexecutorid == pending.id
        env.client.close(submitted.processid, ["ok"], pending.prvkey)
    finally:
        try:
            env.client.remove_executor(env.colonyname, pending.name, env.colony_prvkey)
        except Exception:
            pass


def test_only_colony_owner_may_add_executor(env):
    prvkey, executorid = new_key()
    executor = {
        "executorid": executorid,
        "executortype": unique("type"),
        "executorname": unique("executor"),
        "colonyname": env.colonyname,
    }
    # Signed by an approved executor, not the colony owner.
    with pytest.raises(ColoniesConnectionError):
        env.client.add_executor(executor, env.prvkey)
    names = [e["executorname"] for e in env.client.list_executors(env.colonyname, env.prvkey)]
    assert executor["executorname"] not in names


def test_list_and_remove_processes(env):
    executortype = unique("type")  # nobody assigns this type: both stay WAITING
    p1 = submit(env, executortype)
    p2 = submit(env, executortype)

    waiting = env.client.list_processes(env.colonyname, 100, WAITING, env.prvkey)
    by_id = {p["processid"]: p for p in waiting}
    assert p1.processid in by_id and p2.processid in by_id
    assert all(p["state"] == WAITING for p in waiting)
    assert by_id[p1.processid]["spec"]["conditions"]["executortype"] == executortype

    running = env.client.list_processes(env.colonyname, 100, RUNNING, env.prvkey) or []
    assert p1.processid not in {p["processid"] for p in running}

    env.client.remove_process(p1.processid, env.prvkey)
    with pytest.raises(ColoniesConnectionError):
        env.client.get_process(p1.processid, env.prvkey)
    waiting = env.client.list_processes(env.colonyname, 100, WAITING, env.prvkey) or []
    ids = {p["processid"] for p in waiting}
    assert p1.processid not in ids
    assert p2.processid in ids

    env.client.remove_process(p2.processid, env.prvkey)


def test_attribute_on_running_process(env, executor):
    submitted = submit(env, executor.type)
    env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)

    added = env.client.add_attribute(submitted.processid, "answer", "42", executor.prvkey)
    # ColonyOS derives the id: SHA3-256(targetid + key + decimal(attributetype)).
    expected_id = hashlib.sha3_256(
        f"{submitted.processid}answer{ATTRIBUTE_OUT}".encode()
    ).hexdigest()
    assert added["attributeid"] == expected_id
    assert added["targetid"] == submitted.processid

    fetched = env.client.get_attribute(added["attributeid"], env.prvkey)
    assert fetched["key"] == "answer"
    assert fetched["value"] == "42"
    assert fetched["targetid"] == submitted.processid
    assert fetched["attributetype"] == ATTRIBUTE_OUT

    process = env.client.get_process(submitted.processid, env.prvkey)
    assert any(a.key == "answer" and a.value == "42" for a in process.attributes or [])

    env.client.close(submitted.processid, [], executor.prvkey)


def test_colony_executors_colonies_and_stats(env):
    assert env.colonyname == "dev"
    colony_id = Crypto().id(env.colony_prvkey)

    colony = env.client.get_colony(env.colonyname, env.prvkey)
    assert colony["name"] == env.colonyname
    assert colony["colonyid"] == colony_id

    executors = env.client.list_executors(env.colonyname, env.prvkey)
    dev = next(e for e in executors if e["executorname"] == env.executorname)
    assert dev["executorid"] == Crypto().id(env.prvkey)
    assert dev["executortype"] == env.executortype
    assert dev["colonyname"] == env.colonyname
    assert dev["state"] == EXECUTOR_APPROVED

    colonies = env.client.list_colonies(env.server_prvkey)
    dev_colony = next(c for c in colonies if c["name"] == env.colonyname)
    assert dev_colony["colonyid"] == colony_id
    # Listing colonies is for the server owner only.
    with pytest.raises(ColoniesConnectionError):
        env.client.list_colonies(env.colony_prvkey)

    waiting = submit(env, unique("type"))
    try:
        stats = env.client.stats(env.colonyname, env.prvkey)
        assert stats["waitingprocesses"] >= 1
        assert stats["executors"] >= 1
        for key in ("runningprocesses", "successfulprocesses", "failedprocesses"):
            assert isinstance(stats[key], int) and stats[key] >= 0
    finally:
        env.client.remove_process(waiting.processid, env.prvkey)


def test_unknown_key_is_denied(env):
    stranger, _ = new_key()
    with pytest.raises(ColoniesConnectionError) as err:
        env.client.get_colony(env.colonyname, stranger)
    # ColonyOS's wording, which pycolonies users match on to tell a permission problem.
    assert str(err.value) == f"Access denied, not a member of Colony with name <{env.colonyname}>"

    with pytest.raises(ColoniesConnectionError):
        env.client.submit_func_spec(
            func_spec("echo", [], env.colonyname, unique("type")), stranger
        )


def post_envelope(env, payloadtype, payload_b64, signature):
    body = json.dumps(
        {"payloadtype": payloadtype, "payload": payload_b64, "signature": signature}
    )
    return requests.post(env.api_url, data=body, timeout=10)


def decode_error(reply):
    envelope = reply.json()
    assert envelope["error"] is True
    assert envelope["payloadtype"] == "error"
    failure = json.loads(base64.b64decode(envelope["payload"]))
    assert failure["status"] == reply.status_code
    assert isinstance(failure["message"], str) and failure["message"]
    return failure


def test_tampered_and_malformed_signatures_are_rejected(env):
    msg = {"msgtype": "getcolonymsg", "colonyname": env.colonyname}
    payload = base64.b64encode(json.dumps(msg).encode()).decode()

    # Control: the same envelope with an honest signature is accepted.
    ok = post_envelope(env, "getcolonymsg", payload, Crypto().sign(payload, env.prvkey))
    assert ok.status_code == 200
    assert ok.json()["error"] is False

    # A valid signature over different bytes recovers some other identity.
    other = base64.b64encode(json.dumps({**msg, "x": 1}).encode()).decode()
    tampered = post_envelope(env, "getcolonymsg", payload, Crypto().sign(other, env.prvkey))
    assert tampered.status_code == 403
    decode_error(tampered)

    malformed = post_envelope(env, "getcolonymsg", payload, "00" * 10)
    assert malformed.status_code == 403
    decode_error(malformed)


def test_assign_times_out_when_queue_is_empty(env, executor):
    started = time.monotonic()
    with pytest.raises(ColoniesConnectionError) as err:
        env.client.assign(env.colonyname, 1, executor.prvkey)
    elapsed = time.monotonic() - started
    assert "no process available" in str(err.value).lower()
    # A positive timeout is a long poll: the server waits for it before
    # answering 404 (ColonyOS HandleAssignProcess), but not much longer.
    assert 0.8 <= elapsed < 5, f"assign with timeout 1 returned after {elapsed:.2f}s"


def test_waiting_assign_is_woken_by_submit(env, executor):
    result = {}

    def poll():
        try:
            result["process"] = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
        except Exception as e:  # reported by the assertions below
            result["error"] = e

    poller = threading.Thread(target=poll, daemon=True)
    started = time.monotonic()
    poller.start()
    time.sleep(0.5)  # let the assign reach the server and start waiting
    submitted = submit(env, executor.type)
    poller.join(ASSIGN_TIMEOUT_S + 5)
    elapsed = time.monotonic() - started

    assert not poller.is_alive(), "assign did not return"
    assert "error" not in result, f"assign failed: {result.get('error')}"
    assert result["process"].processid == submitted.processid
    # Woken by the submit, not by its own deadline.
    assert elapsed < ASSIGN_TIMEOUT_S - 2, f"assign returned after {elapsed:.2f}s"
    env.client.close(submitted.processid, [], executor.prvkey)


def workflow_node(env, executortype, name, dependencies, args=None):
    spec = func_spec(name, args or [], env.colonyname, executortype)
    spec.nodename = name
    spec.conditions.dependencies = dependencies
    return spec


def submit_workflow(env, executortype, nodes):
    """Submits a workflow of (name, dependencies) nodes, one function per node name."""
    workflow = Workflow(
        colonyname=env.colonyname,
        functionspecs=[workflow_node(env, executortype, n, deps) for n, deps in nodes],
    )
    return env.client.submit_workflow(workflow, env.prvkey)


def test_workflow_of_three_levels_passes_outputs_to_children(env, executor):
    # gen -> (double, square) -> total
    graph = submit_workflow(
        env,
        executor.type,
        [("gen", []), ("double", ["gen"]), ("square", ["gen"]), ("total", ["double", "square"])],
    )
    assert graph.state == WAITING
    assert len(graph.processids) == 4
    assert len(graph.rootprocessids) == 1
    assert len(graph.nodes) == 4 and len(graph.edges) == 4
    ran = []
    total_input = None
    for _ in range(4):
        p = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
        assert p.processgraphid == graph.processgraphid
        name = p.spec.funcname
        ran.append(name)
        if name == "gen":
            out = [3]
        elif name == "double":
            out = [2 * p.input[0]]
        elif name == "square":
            out = [p.input[0] ** 2]
        else:
            total_input = p.input
            out = [sum(p.input)]
        env.client.close(p.processid, out, executor.prvkey)
    assert ran[0] == "gen" and ran[3] == "total", ran
    assert total_input == [6, 9], "parents' outputs in dependency order"
    done = env.client.get_processgraph(graph.processgraphid, env.prvkey)
    assert done.state == SUCCESSFUL
    members = env.client.get_processes_for_workflow(
        graph.processgraphid, env.colonyname, env.prvkey
    )
    assert sorted(p["spec"]["funcname"] for p in members) == ["double", "gen", "square", "total"]
    assert all(p["state"] == SUCCESSFUL for p in members)
    listed = env.client.get_processgraphs(env.colonyname, 100, env.prvkey, state=SUCCESSFUL)
    assert graph.processgraphid in [g["processgraphid"] for g in listed]


def test_failed_parent_fails_the_workflow_which_is_then_removed(env, executor):
    graph = submit_workflow(env, executor.type, [("first", []), ("second", ["first"])])
    first = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert first.spec.funcname == "first"
    env.client.fail(first.processid, ["boom"], executor.prvkey)
    failed = env.client.get_processgraph(graph.processgraphid, env.prvkey)
    assert failed.state == FAILED
    second = env.client.get_process(graph.processids[1], env.prvkey)
    assert second.state == FAILED
    with pytest.raises(ColoniesConnectionError):
        env.client.assign(env.colonyname, -1, executor.prvkey)
    with pytest.raises(ColoniesConnectionError):
        env.client.remove_process(second.processid, env.prvkey)  # only with its workflow
    env.client.remove_processgraph(graph.processgraphid, env.prvkey)
    with pytest.raises(ColoniesConnectionError):
        env.client.get_processgraph(graph.processgraphid, env.prvkey)
    with pytest.raises(ColoniesConnectionError):
        env.client.get_process(second.processid, env.prvkey)


def test_child_added_under_a_running_parent_runs_next(env, executor):
    graph = submit_workflow(env, executor.type, [("parent", []), ("last", ["parent"])])
    parent = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    child_spec = func_spec("inserted", [], env.colonyname, executor.type)
    child = env.client.add_child(
        graph.processgraphid, parent.processid, "", child_spec, "inserted", True, executor.prvkey
    )
    assert child["parents"] == [parent.processid]
    assert child["children"] == [graph.processids[1]]
    env.client.close(parent.processid, ["p"], executor.prvkey)
    inserted = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert inserted.processid == child["processid"]
    assert inserted.input == ["p"]
    env.client.close(inserted.processid, ["i"], executor.prvkey)
    last = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert last.processid == graph.processids[1]
    assert last.input == ["i"]
    env.client.close(last.processid, [], executor.prvkey)
    assert env.client.get_processgraph(graph.processgraphid, env.prvkey).state == SUCCESSFUL


def rpc(env, msg, prvkey):
    """Sends any message, signed and encoded by pycolonies itself, for the message types it
    has no method for (pause, locations, executor logs, search, change-id)."""
    return env.client._Colonies__rpc(msg, prvkey)


def test_functions_are_registered_and_count_runs(env, executor):
    added = env.client.add_function(env.colonyname, executor.name, "echo", executor.prvkey)
    assert added["funcname"] == "echo" and added["executortype"] == executor.type
    with pytest.raises(ColoniesConnectionError):
        # Only the executor itself registers its functions.
        env.client.add_function(env.colonyname, executor.name, "other", env.prvkey)
    submitted = submit(env, executor.type)
    env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    env.client.close(submitted.processid, [], executor.prvkey)
    mine = env.client.get_functions_by_executor(env.colonyname, executor.name, env.prvkey)
    assert [(f["funcname"], f["counter"]) for f in mine] == [("echo", 1)]
    everyone = env.client.get_functions_by_colony(env.colonyname, env.prvkey)
    assert added["functionid"] in [f["functionid"] for f in everyone]


def test_process_and_executor_logs(env, executor):
    submitted = submit(env, executor.type)
    with pytest.raises(ColoniesConnectionError):
        env.client.add_log(submitted.processid, "too early", executor.prvkey)
    env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    marker = unique("needle")
    for line in ["one", "two", marker]:
        env.client.add_log(submitted.processid, line, executor.prvkey)
    logs = env.client.get_process_log(env.colonyname, submitted.processid, 100, 0, env.prvkey)
    assert [entry["message"] for entry in logs] == ["one", "two", marker]
    assert all(entry["executorname"] == executor.name for entry in logs)
    since = logs[0]["timestamp"]
    later = env.client.get_process_log(
        env.colonyname, submitted.processid, 100, since, env.prvkey
    )
    assert [entry["message"] for entry in later] == ["two", marker]
    latest = rpc(
        env,
        {
            "msgtype": "getlogsmsg",
            "colonyname": env.colonyname,
            "processid": submitted.processid,
            "count": 1,
            "latest": True,
        },
        env.prvkey,
    )
    assert [entry["message"] for entry in latest] == [marker]
    rpc(
        env,
        {
            "msgtype": "addexecutorlogmsg",
            "colonyname": env.colonyname,
            "executorname": executor.name,
            "message": f"executor {marker}",
        },
        executor.prvkey,
    )
    # An executor's log holds the lines it added to its processes and its own, oldest first
    # (ColonyOS: every line with its executor name).
    own = env.client.get_executor_log(env.colonyname, executor.name, 100, 0, env.prvkey)
    assert [entry["message"] for entry in own] == ["one", "two", marker, f"executor {marker}"]
    assert [entry["processid"] for entry in own] == [submitted.processid] * 3 + [""]
    newest = rpc(
        env,
        {
            "msgtype": "getlogsmsg",
            "colonyname": env.colonyname,
            "executorname": executor.name,
            "count": 2,
            "latest": True,
        },
        env.prvkey,
    )
    assert [entry["message"] for entry in newest] == [marker, f"executor {marker}"]
    after = env.client.get_executor_log(env.colonyname, executor.name, 100, since, env.prvkey)
    assert [entry["message"] for entry in after] == ["two", marker, f"executor {marker}"]
    found = rpc(
        env,
        {
            "msgtype": "searchlogsmsg",
            "colonyname": env.colonyname,
            "text": marker,
            "days": 1,
            "count": 10,
        },
        env.prvkey,
    )
    assert [entry["message"] for entry in found] == [f"executor {marker}", marker]


def test_pause_and_resume_assignments(env, executor):
    def status():
        reply = rpc(
            env, {"msgtype": "getpausestatusmsg", "colonyname": env.colonyname}, env.prvkey
        )
        return reply["ispaused"]

    pause = {"msgtype": "pauseassignmentsmsg", "colonyname": env.colonyname}
    resume = {"msgtype": "resumeassignmentsmsg", "colonyname": env.colonyname}
    with pytest.raises(ColoniesConnectionError):
        rpc(env, pause, env.prvkey)  # only the colony owner
    submitted = submit(env, executor.type)
    rpc(env, pause, env.colony_prvkey)
    try:
        assert status() is True
        with pytest.raises(ColoniesConnectionError) as err:
            env.client.assign(env.colonyname, -1, executor.prvkey)
        assert "paused" in str(err.value)
    finally:
        rpc(env, resume, env.colony_prvkey)
    assert status() is False
    assigned = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert assigned.processid == submitted.processid


def test_locations_are_managed_by_the_colony_owner(env):
    name = unique("site")
    location = {
        "name": name,
        "colonyname": env.colonyname,
        "description": "rack 4",
        "long": 18.07,
        "lat": 59.33,
    }
    add = {"msgtype": "addlocationmsg", "location": location}
    with pytest.raises(ColoniesConnectionError):
        rpc(env, add, env.prvkey)
    added = rpc(env, add, env.colony_prvkey)
    assert added["name"] == name and len(added["locationid"]) == 64
    got = rpc(
        env,
        {"msgtype": "getlocationmsg", "colonyname": env.colonyname, "name": name},
        env.prvkey,
    )
    assert got == added
    listed = rpc(env, {"msgtype": "getlocationsmsg", "colonyname": env.colonyname}, env.prvkey)
    assert name in [loc["name"] for loc in listed]
    rpc(
        env,
        {"msgtype": "removelocationmsg", "colonyname": env.colonyname, "name": name},
        env.colony_prvkey,
    )
    with pytest.raises(ColoniesConnectionError):
        rpc(
            env,
            {"msgtype": "getlocationmsg", "colonyname": env.colonyname, "name": name},
            env.prvkey,
        )


def test_cron_starts_its_workflow_on_schedule(env, executor):
    workflow = Workflow(
        colonyname=env.colonyname,
        functionspecs=[workflow_node(env, executor.type, "tick", [])],
    )
    # pycolonies sends the misspelled `waitforprevprocessgrap`, which is ignored.
    cron = env.client.add_cron(
        unique("cron"), "0/1 * * * * *", True, workflow, env.colonyname, env.prvkey
    )
    assert len(cron["cronid"]) == 64
    assert cron["waitforprevprocessgraph"] is False
    try:
        fired = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
        assert fired.spec.funcname == "tick"
        assert fired.processgraphid != ""
        env.client.close(fired.processid, [], executor.prvkey)
        got = env.client.get_cron(cron["cronid"], env.prvkey)
        assert got["lastrun"] != "0001-01-01T00:00:00Z"
        listed = env.client.get_crons(env.colonyname, 100, env.prvkey)
        assert cron["cronid"] in [c["cronid"] for c in listed]
        # `count` as ColonyOS takes it: a large one is fine (ColonyOS's own `blueprint
        # doctor` asks for 1000), 0 lists nothing.
        many = env.client.get_crons(env.colonyname, 1000, env.prvkey)
        assert cron["cronid"] in [c["cronid"] for c in many]
        assert env.client.get_crons(env.colonyname, 0, env.prvkey) in ([], None)
        env.client.run_cron(cron["cronid"], env.prvkey)
    finally:
        env.client.del_cron(cron["cronid"], env.prvkey)
    with pytest.raises(ColoniesConnectionError):
        env.client.get_cron(cron["cronid"], env.prvkey)


def test_generator_starts_a_workflow_per_trigger_args(env, executor):
    spec = workflow_node(env, executor.type, "batch", [])
    workflowspec = Workflow(colonyname=env.colonyname, functionspecs=[spec])
    name = unique("gen")
    generator = env.client.add_generator(
        {
            "colonyname": env.colonyname,
            "name": name,
            "workflowspec": json.dumps(workflowspec.model_dump(by_alias=True)),
            "trigger": 2,
            "timeout": 0,
        },
        env.prvkey,
    )
    generatorid = generator["generatorid"]
    for arg in ["a", "b"]:
        rpc(env, {"msgtype": "packgeneratormsg", "generatorid": generatorid, "arg": arg},
            env.prvkey)
    batch = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert batch.spec.args == ["a", "b"]
    env.client.close(batch.processid, [], executor.prvkey)
    resolved = rpc(
        env,
        {"msgtype": "resolvegeneratormsg", "colonyname": env.colonyname, "generatorname": name},
        env.prvkey,
    )
    assert resolved["generatorid"] == generatorid
    assert resolved["queuesize"] == 0
    assert generatorid in [g["generatorid"] for g in env.client.get_generators(
        env.colonyname, env.prvkey)]
    env.client.remove_generator(generatorid, env.prvkey)
    with pytest.raises(ColoniesConnectionError):
        env.client.get_generator(generatorid, env.prvkey)


def test_wait_returns_when_the_process_succeeds(env, executor):
    submitted = submit(env, executor.type)
    done = {}

    def waiter():
        done["process"] = env.client.wait(submitted, ASSIGN_TIMEOUT_S, env.prvkey)

    thread = threading.Thread(target=waiter)
    thread.start()
    assigned = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    env.client.close(assigned.processid, ["finished"], executor.prvkey)
    thread.join(ASSIGN_TIMEOUT_S + 5)
    assert not thread.is_alive()
    assert done["process"].state == SUCCESSFUL
    assert done["process"].output == ["finished"]
    # Already in the state: the frame comes at once.
    again = env.client.wait(submitted, ASSIGN_TIMEOUT_S, env.prvkey)
    assert again.state == SUCCESSFUL


def ws_subscribe(env, msg, prvkey):
    """Opens /pubsub and sends `msg` signed with `prvkey`, as pycolonies' wait() does."""
    from websocket import create_connection  # pycolonies' own dependency

    payload = base64.b64encode(json.dumps(msg).encode()).decode()
    envelope = {
        "payloadtype": msg["msgtype"],
        "payload": payload,
        "signature": Crypto().sign(payload, prvkey),
    }
    host = os.environ["COLONIES_SERVER_HOST"]
    port = os.environ["COLONIES_SERVER_PORT"]
    scheme = "wss" if TLS else "ws"
    ws = create_connection(f"{scheme}://{host}:{port}/pubsub", timeout=ASSIGN_TIMEOUT_S)
    ws.send(json.dumps(envelope))
    return ws


def test_subscribe_processes_streams_state_changes_of_members_only(env, executor):
    msg = {
        "msgtype": "subscribeprocessesmsg",
        "colonyname": env.colonyname,
        "executortype": executor.type,
        "state": WAITING,
        "timeout": 5,
    }
    stranger, _ = new_key()
    refused = ws_subscribe(env, msg, stranger)
    frame = json.loads(refused.recv())
    refused.close()
    assert frame["error"] is True and frame["payloadtype"] == "error"
    assert "not a member" in json.loads(base64.b64decode(frame["payload"]))["message"]

    ws = ws_subscribe(env, msg, env.prvkey)
    try:
        # The subscription is registered once the server read the frame; a submit racing
        # it could be missed, so submit until the first frame arrives (bounded).
        ws.settimeout(0.5)
        submitted = []
        for _ in range(10):
            submitted.append(submit(env, executor.type).processid)
            try:
                frame = json.loads(ws.recv())
                break
            except Exception:
                continue
        else:
            pytest.fail("no frame for any submitted process")
        assert frame["payloadtype"] == "subscribeprocessmsg" and frame["error"] is False
        process = json.loads(base64.b64decode(frame["payload"]))
        assert process["processid"] in submitted
        assert process["state"] == WAITING
    finally:
        ws.close()


def test_channels_between_initiator_and_executor(env, executor):
    spec = func_spec("stream", [], env.colonyname, executor.type)
    spec.channels = ["chat"]
    submitted = env.client.submit_func_spec(spec, env.prvkey)
    env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    # pycolonies sends the payload as a list of byte values.
    env.client.channel_append(submitted.processid, "chat", 1, "hello", env.prvkey)
    env.client.channel_append(submitted.processid, "chat", 1, "hi back", executor.prvkey,
                              in_reply_to=1)
    entries = env.client.channel_read(submitted.processid, "chat", 0, 0, env.prvkey)
    assert [e["payload"] for e in entries] == [b"hello", b"hi back"]
    assert entries[1]["inreplyto"] == 1
    later = env.client.channel_read(submitted.processid, "chat", 1, 0, executor.prvkey)
    assert [e["payload"] for e in later] == [b"hi back"]
    stranger, _ = new_key()
    with pytest.raises(ColoniesConnectionError):
        env.client.channel_read(submitted.processid, "chat", 0, 0, stranger)

    received = []

    def on_entries(batch):
        received.extend(e["payload"] for e in batch)
        return len(received) < 3

    appender = threading.Timer(
        0.2,
        lambda: env.client.channel_append(
            submitted.processid, "chat", 2, "streamed", executor.prvkey
        ),
    )
    appender.start()
    env.client.subscribe_channel(
        submitted.processid, "chat", env.prvkey, after_seq=0, timeout=10, callback=on_entries
    )
    appender.join()
    assert received == [b"hello", b"hi back", b"streamed"]


def test_file_metadata_labels_and_snapshots(env):
    label = "/" + unique("data")
    added = []
    for name, size in [("a.txt", 1), ("a.txt", 2), ("b.txt", 3)]:
        added.append(
            rpc(
                env,
                {
                    "msgtype": "addfilemsg",
                    "file": {
                        "colonyname": env.colonyname,
                        "label": label,
                        "name": name,
                        "size": size,
                        "checksum": hashlib.sha256(name.encode()).hexdigest(),
                        "checksumalg": "SHA256",
                        "ref": {"protocol": "s3", "s3object": {"bucket": "b", "object": name}},
                    },
                },
                env.prvkey,
            )
        )
    assert [f["sequencenr"] for f in added] == [1, 2, 1]
    latest = env.client.get_file(env.colonyname, env.prvkey, label=label, filename="a.txt")
    assert [f["size"] for f in latest] == [2]
    both = env.client.get_file(
        env.colonyname, env.prvkey, label=label, filename="a.txt", latest=False
    )
    # Newest revision first, as ColonyOS lists them.
    assert [f["sequencenr"] for f in both] == [2, 1]
    # A label's files as ColonyOS's FileData: name, checksum, size and the S3 object
    # (`colonies fs sync` downloads by s3filename).
    files = env.client.get_files(label, env.colonyname, env.prvkey)
    assert sorted((f["name"], f["size"], f["s3filename"]) for f in files) == [
        ("a.txt", 2, "a.txt"),
        ("b.txt", 3, "b.txt"),
    ]
    assert set(files[0]) == {"name", "checksum", "size", "s3filename"}
    labels = env.client.get_file_labels(env.colonyname, env.prvkey, name=label, exact=True)
    assert labels == [{"name": label, "files": 2}]
    # With `exact`, a label that does not exist lists nothing, not its prefix's neighbours.
    assert env.client.get_file_labels(env.colonyname, env.prvkey, name=label[:-1], exact=True) in (
        [],
        None,
    )
    name = unique("snap")
    snapshot = env.client.create_snapshot(env.colonyname, label, name, env.prvkey)
    assert sorted(snapshot["fileids"]) == sorted([added[1]["fileid"], added[2]["fileid"]])
    assert env.client.get_snapshot_by_name(env.colonyname, name, env.prvkey) == snapshot
    got = env.client.get_snapshot_by_id(env.colonyname, snapshot["snapshotid"], env.prvkey)
    assert got == snapshot
    rpc(
        env,
        {"msgtype": "removesnapshotmsg", "colonyname": env.colonyname, "name": name},
        env.prvkey,
    )
    with pytest.raises(ColoniesConnectionError):
        env.client.get_snapshot_by_name(env.colonyname, name, env.prvkey)


def test_blueprints_are_reconciled_by_their_kinds_executor(env, executor):
    kind = "Db" + uuid.uuid4().hex[:8]
    definition = {
        "kind": "BlueprintDefinition",
        "metadata": {"name": kind.lower() + ".def", "colonyname": env.colonyname},
        "spec": {
            "names": {"kind": kind},
            "schema": {"type": "object", "required": ["replicas"],
                       "properties": {"replicas": {"type": "integer"}}},
            "handler": {"executorType": executor.type, "functionName": "reconcile"},
        },
    }
    with pytest.raises(ColoniesConnectionError):
        env.client.add_blueprint_definition(definition, env.prvkey)  # the colony owner only
    added = env.client.add_blueprint_definition(definition, env.colony_prvkey)
    assert len(added["blueprintdefinitionid"]) == 64
    name = unique("db")
    blueprint = {
        "kind": kind,
        "metadata": {"name": name, "colonyname": env.colonyname},
        "spec": {"replicas": 2},
    }
    with pytest.raises(ColoniesConnectionError):
        env.client.add_blueprint({**blueprint, "spec": {"replicas": "two"}}, env.prvkey)
    stored = env.client.add_blueprint(blueprint, env.prvkey)
    # The reconciler is asked right away, with the kind and the blueprint's name.
    reconcile = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert reconcile.spec.funcname == "reconcile"
    assert reconcile.spec.kwargs == {"kind": kind, "blueprintName": name}
    env.client.update_blueprint_status(env.colonyname, name, {"replicas": 2}, executor.prvkey)
    env.client.close(reconcile.processid, [], executor.prvkey)
    got = env.client.get_blueprint(env.colonyname, name, env.prvkey)
    assert got["status"] == {"replicas": 2}
    # A spec change bumps the generation and asks again.
    updated = env.client.update_blueprint({**got, "spec": {"replicas": 3}}, env.prvkey)
    assert updated["metadata"].get("generation", 0) == stored["metadata"].get("generation", 0) + 1
    again = env.client.assign(env.colonyname, ASSIGN_TIMEOUT_S, executor.prvkey)
    assert again.spec.kwargs["blueprintName"] == name
    env.client.close(again.processid, [], executor.prvkey)
    history = env.client.get_blueprint_history(stored["blueprintid"], env.prvkey)
    assert [h["changetype"] for h in history] == ["update", "create"]
    forced = env.client.reconcile_blueprint(env.colonyname, name, executor.prvkey, force=True)
    assert forced["spec"]["kwargs"]["force"] is True
    listed = env.client.get_blueprints(env.colonyname, env.prvkey, kind=kind)
    assert [b["metadata"]["name"] for b in listed] == [name]
    with pytest.raises(ColoniesConnectionError):
        # A definition in use cannot go.
        env.client.remove_blueprint_definition(
            env.colonyname, definition["metadata"]["name"], env.colony_prvkey
        )
    env.client.remove_blueprint(env.colonyname, name, env.prvkey)
    env.client.remove_blueprint_definition(
        env.colonyname, definition["metadata"]["name"], env.colony_prvkey
    )
    assert definition["metadata"]["name"] not in [
        d["metadata"]["name"]
        for d in env.client.get_blueprint_definitions(env.colonyname, env.prvkey)
    ]
