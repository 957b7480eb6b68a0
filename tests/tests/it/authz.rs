//! The authorization table: every message type of the ColonyOS protocol, sent by every kind of
//! caller, gets exactly the outcome section a.2 of the protocol document gives: the allowed
//! callers succeed, every other caller gets 403. Fixtures are made fresh for every call, so a
//! call that succeeds (and removes or changes something) never affects the next one.
//!
//! Callers: an unknown key, an approved executor of another colony, a pending (unapproved)
//! executor of the colony, a user of the colony, an approved executor of the colony, the colony
//! owner and the server owner.

use node::client::{Client, ClientError};
use proto::msgs::SubmitMsg;
use proto::process::process_state as ps;
use proto::{PrivateKey, Process, Request};
use serde_json::{json, Value};
use std::time::Duration;
use tests::{test_key, TestNode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Unknown,
    OtherColony,
    Pending,
    User,
    Executor,
    ColonyOwner,
    ServerOwner,
}

use Caller::*;

const ALL: [Caller; 7] = [
    Unknown,
    OtherColony,
    Pending,
    User,
    Executor,
    ColonyOwner,
    ServerOwner,
];
/// Roles of section a.2 as caller sets.
const SO: &[Caller] = &[ServerOwner];
const CO: &[Caller] = &[ColonyOwner];
/// Member: an approved executor or a user of the colony.
const M: &[Caller] = &[User, Executor];
/// Member without approval required.
const M_ANY: &[Caller] = &[User, Executor, Pending];
const M_OR_CO: &[Caller] = &[User, Executor, ColonyOwner];
/// The approved executor itself (self, assigned, initiator of the fixture's process).
const SELF: &[Caller] = &[Executor];
/// Unsigned types: anyone.
const ANYONE: &[Caller] = &ALL;

/// Who may send each message type (the WebSocket-only types are checked separately).
const TABLE: &[(&str, &[Caller])] = &[
    ("versionmsg", ANYONE),
    ("getserverinfomsg", ANYONE),
    ("addcolonymsg", SO),
    ("removecolonymsg", SO),
    ("getcoloniesmsg", SO),
    ("getcolonymsg", M),
    ("getcolonystatsmsg", M),
    ("getstatisticsmsg", SO),
    ("getclustermsg", SO),
    ("getbansmsg", SO),
    ("getdashboardmsg", SO),
    ("removebanmsg", SO),
    ("changeserveridmsg", SO),
    ("addexecutormsg", CO),
    ("getexecutorsmsg", M_ANY),
    ("getexecutormsg", M),
    ("getexecutorbyidmsg", M),
    ("approveexecutormsg", CO),
    ("rejectexecutormsg", CO),
    ("removeexecutormsg", CO),
    ("reportallocationmsg", SELF),
    ("updateexecutormsg", SELF),
    // M* and the caller is an executor: a pending one may change its own id.
    ("changeexecutoridmsg", &[Executor, Pending]),
    ("addusermsg", CO),
    ("getusersmsg", M_ANY),
    ("getusermsg", M_ANY),
    ("getuserbyidmsg", M_ANY),
    ("removeusermsg", CO),
    ("changeuseridmsg", &[User]),
    ("changecolonyidmsg", CO),
    ("submitfuncspecmsg", M),
    ("assignprocessmsg", SELF),
    ("getprocesshistmsg", M),
    ("getprocessesmsg", M),
    ("getprocessmsg", M),
    ("removeprocessmsg", M),
    ("removeallprocessesmsg", CO),
    ("closesuccessfulmsg", SELF),
    ("closefailedmsg", SELF),
    ("setoutputmsg", SELF),
    ("cancelprocessmsg", M),
    ("pauseassignmentsmsg", CO),
    ("resumeassignmentsmsg", CO),
    ("getpausestatusmsg", M_ANY),
    ("addattributemsg", SELF),
    ("getattributemsg", M),
    ("submitworkflowspecmsg", M),
    ("getprocessgraphmsg", M),
    ("getprocessgraphsmsg", M),
    ("removeprocessgraphmsg", M),
    ("removeallprocessgraphsmsg", CO),
    ("addchildmsg", SELF),
    ("cancelprocessgraphmsg", M),
    ("addfunctionmsg", SELF),
    ("getfunctionsmsg", M),
    ("getfunctionsbyexecutormsg", M),
    ("removefunctionmsg", SELF),
    ("addcronmsg", M),
    ("getcronmsg", M),
    ("getcronsmsg", M),
    ("runcronmsg", M),
    ("removecronmsg", M),
    ("addgeneratormsg", M),
    ("getgeneratormsg", M),
    ("resolvegeneratormsg", M),
    ("getgeneratorsmsg", M),
    ("packgeneratormsg", M),
    ("removegeneratormsg", M),
    ("addlogmsg", SELF),
    ("addexecutorlogmsg", SELF),
    ("getlogsmsg", M),
    ("searchlogsmsg", M),
    ("addfilemsg", M),
    ("getfilemsg", M),
    ("getfilesmsg", M),
    ("getfilelabelsmsg", M),
    ("removefilemsg", M),
    ("createsnapshotmsg", M),
    ("getsnapshotmsg", M),
    ("getsnapshotsmsg", M),
    ("removesnapshotmsg", M),
    ("removeallsnapshotmsg", M),
    ("addlocationmsg", CO),
    ("getlocationsmsg", M_ANY),
    ("getlocationmsg", M_ANY),
    ("removelocationmsg", CO),
    ("channelappendmsg", SELF),
    ("channelreadmsg", SELF),
    ("addblueprintdefinitionmsg", CO),
    ("getblueprintdefinitionmsg", M_OR_CO),
    ("getblueprintdefinitionsmsg", M_OR_CO),
    ("removeblueprintdefinitionmsg", CO),
    ("addblueprintmsg", M_OR_CO),
    ("getblueprintmsg", M_OR_CO),
    ("getblueprintsmsg", M_OR_CO),
    ("updateblueprintmsg", M_OR_CO),
    ("removeblueprintmsg", M_OR_CO),
    ("getblueprinthistorymsg", M_OR_CO),
    ("updateblueprintstatusmsg", M),
    ("reconcileblueprintmsg", M),
];

/// The node, the caller keys, and a counter for fresh names.
struct World {
    node: TestNode,
    user: PrivateKey,
    pending: PrivateKey,
    other: PrivateKey,
    unknown: PrivateKey,
    next: u64,
}

impl World {
    fn client(&self) -> &Client {
        &self.node.client
    }

    fn key(&self, caller: Caller) -> &PrivateKey {
        match caller {
            Unknown => &self.unknown,
            OtherColony => &self.other,
            Pending => &self.pending,
            User => &self.user,
            Executor => &self.node.executor,
            ColonyOwner => &self.node.colony,
            ServerOwner => &self.node.server,
        }
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}-{}", self.next)
    }

    /// Sends `payload` (with its msgtype) signed by `key`; Ok(reply JSON) or the API status.
    async fn send(&self, payload: &Value, key: &PrivateKey) -> Result<Value, i32> {
        let msgtype = payload["msgtype"].as_str().expect("payload has a msgtype");
        let request = Request::decode(msgtype, &payload.to_string()).expect("valid payload");
        let wait = Duration::from_secs(5);
        match self.client().call_raw(&request, Some(key), wait).await {
            Ok(json) => Ok(serde_json::from_str(&json).unwrap_or(Value::Null)),
            Err(ClientError::Api { status, .. }) => Err(status),
            Err(other) => panic!("{msgtype}: transport failure {other}"),
        }
    }

    /// A setup call that must succeed.
    async fn setup(&self, payload: Value, key: &PrivateKey) -> Value {
        match self.send(&payload, key).await {
            Ok(reply) => reply,
            Err(status) => panic!("fixture {} failed with {status}", payload["msgtype"]),
        }
    }

    /// A spec for the executor's type; an `urgent` one goes ahead of everything left in the
    /// queue (only fixtures that assign at once submit urgent ones).
    fn spec(funcname: &str, urgent: bool) -> Value {
        let mut spec = serde_json::to_value(TestNode::spec(funcname, "cli")).unwrap();
        if urgent {
            spec["priority"] = json!(50_000);
        }
        spec
    }

    /// A waiting process submitted by the executor.
    async fn waiting(&mut self) -> Process {
        let request = Request::Submit(SubmitMsg {
            spec: serde_json::from_value(Self::spec("fixture", false)).unwrap(),
        });
        self.client()
            .call(&request, &self.node.executor)
            .await
            .expect("submit fixture")
    }

    /// A process submitted by and running on the executor (with a channel `chat`).
    async fn running(&mut self) -> Process {
        let mut spec = Self::spec("fixture", true);
        spec["channels"] = json!(["chat"]);
        let submitted = self
            .setup(
                json!({"msgtype": "submitfuncspecmsg", "spec": spec}),
                &self.node.executor,
            )
            .await;
        let assigned = self
            .setup(
                json!({"msgtype": "assignprocessmsg", "colonyname": "dev", "timeout": 5}),
                &self.node.executor,
            )
            .await;
        assert_eq!(
            assigned["processid"], submitted["processid"],
            "fixture assign"
        );
        serde_json::from_value(assigned).unwrap()
    }

    /// A workflow `parent -> child` whose parent runs on the executor.
    async fn running_workflow(&mut self) -> (String, String) {
        let mut parent = Self::spec("parent", true);
        parent["nodename"] = json!("parent");
        let mut child = Self::spec("child", false);
        child["nodename"] = json!("child");
        child["conditions"]["dependencies"] = json!(["parent"]);
        let graph = self
            .setup(
                json!({"msgtype": "submitworkflowspecmsg",
                       "spec": {"colonyname": "dev", "functionspecs": [parent, child]}}),
                &self.node.executor,
            )
            .await;
        let assigned = self
            .setup(
                json!({"msgtype": "assignprocessmsg", "colonyname": "dev", "timeout": 5}),
                &self.node.executor,
            )
            .await;
        let graphid = graph["processgraphid"].as_str().unwrap().to_string();
        assert_eq!(
            assigned["processgraphid"],
            json!(graphid),
            "fixture workflow assign"
        );
        (graphid, assigned["processid"].as_str().unwrap().to_string())
    }

    fn workflow_text() -> String {
        let mut spec = Self::spec("scheduled", false);
        spec["nodename"] = json!("only");
        json!({"colonyname": "dev", "functionspecs": [spec]}).to_string()
    }

    async fn definition(&mut self) -> (String, String) {
        let name = self.fresh("def");
        let kind = self.fresh("Kind");
        let definition = json!({
            "kind": "BlueprintDefinition",
            "metadata": {"name": name, "colonyname": "dev"},
            "spec": {"names": {"kind": kind},
                     "handler": {"executorType": "cli", "functionName": "reconcile"}},
        });
        let payload = json!({"msgtype": "addblueprintdefinitionmsg",
                             "blueprintdefinition": definition});
        self.setup(payload, &self.node.colony).await;
        (name, kind)
    }

    async fn blueprint(&mut self) -> Value {
        let (_, kind) = self.definition().await;
        let name = self.fresh("bp");
        let blueprint = json!({"kind": kind, "metadata": {"name": name, "colonyname": "dev"},
                               "spec": {"size": 1}});
        self.setup(
            json!({"msgtype": "addblueprintmsg", "blueprint": blueprint}),
            &self.node.colony,
        )
        .await
    }

    /// The payload of `msgtype` for one call, with any objects it acts on made fresh.
    async fn payload(&mut self, msgtype: &str) -> Value {
        let mut p = match msgtype {
            "versionmsg" => json!({"buildversion": "", "buildtime": ""}),
            "getserverinfomsg" | "getcoloniesmsg" | "getstatisticsmsg" | "getclustermsg"
            | "getbansmsg" | "getdashboardmsg" => json!({}),
            "removebanmsg" => json!({"source": "192.0.2.1"}),
            "addcolonymsg" => {
                json!({"colony": {"colonyid": test_key().id(), "name": self.fresh("colony")}})
            }
            "removecolonymsg" => {
                let name = self.fresh("victim");
                let colony = json!({"colonyid": test_key().id(), "name": name});
                let add = json!({"msgtype": "addcolonymsg", "colony": colony});
                self.setup(add, &self.node.server).await;
                json!({"colonyname": name})
            }
            "getcolonymsg"
            | "getcolonystatsmsg"
            | "getexecutorsmsg"
            | "getusersmsg"
            | "getpausestatusmsg"
            | "getlocationsmsg"
            | "getsnapshotsmsg"
            | "removeallsnapshotmsg"
            | "getblueprintdefinitionsmsg"
            | "pauseassignmentsmsg"
            | "resumeassignmentsmsg" => json!({"colonyname": "dev"}),
            "changeserveridmsg" => json!({"serverid": test_key().id()}),
            "addexecutormsg" => json!({"executor": {
                "executorid": test_key().id(), "executorname": self.fresh("ex"),
                "executortype": "cli", "colonyname": "dev"}}),
            "getexecutormsg" => json!({"colonyname": "dev", "executorname": "worker"}),
            "getexecutorbyidmsg" => {
                json!({"colonyname": "dev", "executorid": self.node.executor.id()})
            }
            "approveexecutormsg" | "rejectexecutormsg" | "removeexecutormsg" => {
                let name = self.fresh("target");
                let executor = json!({"executorid": test_key().id(), "executorname": name,
                                      "executortype": "cli", "colonyname": "dev"});
                let add = json!({"msgtype": "addexecutormsg", "executor": executor});
                self.setup(add, &self.node.colony).await;
                json!({"colonyname": "dev", "executorname": name})
            }
            "reportallocationmsg" => json!({"colonyname": "dev", "executorname": "worker",
                "allocations": {"projects": {"p": {"allocatedcpu": 1}}}}),
            "updateexecutormsg" => json!({"colonyname": "dev", "executorname": "worker",
                "capabilities": {"hardware": [{"cpu": "4000m"}], "software": []}}),
            "changeexecutoridmsg" => {
                self.idle_executor().await;
                json!({"colonyname": "dev", "executorid": test_key().id()})
            }
            "addusermsg" => json!({"user": {"colonyname": "dev", "userid": test_key().id(),
                "name": self.fresh("user"), "email": "", "phone": ""}}),
            "getusermsg" => json!({"colonyname": "dev", "name": "ann"}),
            "getuserbyidmsg" => json!({"colonyname": "dev", "userid": self.user.id()}),
            "removeusermsg" => {
                let name = self.fresh("gone");
                let user = json!({"colonyname": "dev", "userid": test_key().id(), "name": name});
                self.setup(
                    json!({"msgtype": "addusermsg", "user": user}),
                    &self.node.colony,
                )
                .await;
                json!({"colonyname": "dev", "name": name})
            }
            "changeuseridmsg" => json!({"colonyname": "dev", "userid": test_key().id()}),
            "changecolonyidmsg" => json!({"colonyname": "dev", "colonyid": test_key().id()}),
            "submitfuncspecmsg" => json!({"spec": TestNode::spec("any", "cli")}),
            "assignprocessmsg" => {
                self.waiting().await;
                json!({"colonyname": "dev", "timeout": 5})
            }
            "getprocesshistmsg" => {
                json!({"colonyname": "dev", "executorid": "", "seconds": 60, "state": 0})
            }
            "getprocessesmsg" => json!({"colonyname": "dev", "count": 10, "state": 0}),
            "getprocessmsg" | "removeprocessmsg" | "cancelprocessmsg" => {
                json!({"processid": self.waiting().await.processid})
            }
            "removeallprocessesmsg" => json!({"colonyname": "dev", "state": ps::SUCCESS}),
            "closesuccessfulmsg" | "setoutputmsg" => {
                json!({"processid": self.running().await.processid, "out": ["x"]})
            }
            "closefailedmsg" => {
                json!({"processid": self.running().await.processid, "errors": ["x"]})
            }
            "addattributemsg" => {
                let id = self.running().await.processid;
                json!({"attribute": {"targetid": id, "key": "k", "value": "v",
                                     "attributetype": 1}})
            }
            "getattributemsg" => {
                let id = self.running().await.processid;
                let attribute = json!({"targetid": id, "key": "k", "value": "v",
                                       "attributetype": 1});
                let add = json!({"msgtype": "addattributemsg", "attribute": attribute});
                let added = self.setup(add, &self.node.executor).await;
                json!({"attributeid": added["attributeid"]})
            }
            "submitworkflowspecmsg" => {
                let text = Self::workflow_text();
                json!({"spec": serde_json::from_str::<Value>(&text).unwrap()})
            }
            "getprocessgraphmsg" | "removeprocessgraphmsg" | "cancelprocessgraphmsg" => {
                let spec: Value = serde_json::from_str(&Self::workflow_text()).unwrap();
                let submit = json!({"msgtype": "submitworkflowspecmsg", "spec": spec});
                let graph = self.setup(submit, &self.node.executor).await;
                json!({"processgraphid": graph["processgraphid"]})
            }
            "getprocessgraphsmsg" => json!({"colonyname": "dev", "count": 10, "state": 0}),
            "removeallprocessgraphsmsg" => json!({"colonyname": "dev", "state": ps::SUCCESS}),
            "addchildmsg" => {
                let (graph, parent) = self.running_workflow().await;
                let mut spec = Self::spec("added", false);
                spec["nodename"] = json!("added");
                json!({"processgraphid": graph, "parentprocessid": parent,
                       "childprocessid": "", "spec": spec, "insert": false})
            }
            "addfunctionmsg" => json!({"fun": {"executorname": "worker", "colonyname": "dev",
                                               "funcname": self.fresh("fn")}}),
            "getfunctionsmsg" | "getfunctionsbyexecutormsg" => {
                json!({"colonyname": "dev", "executorname": "worker"})
            }
            "removefunctionmsg" => {
                let fun = json!({"executorname": "worker", "colonyname": "dev",
                                 "funcname": self.fresh("fn")});
                let add = json!({"msgtype": "addfunctionmsg", "fun": fun});
                let added = self.setup(add, &self.node.executor).await;
                json!({"functionid": added["functionid"]})
            }
            "addcronmsg" => json!({"cron": {"colonyname": "dev", "name": self.fresh("cron"),
                "interval": 3600, "workflowspec": Self::workflow_text()}}),
            "getcronmsg" | "runcronmsg" | "removecronmsg" => {
                let cron = json!({"colonyname": "dev", "name": self.fresh("cron"),
                                  "interval": 3600, "workflowspec": Self::workflow_text()});
                let added = self
                    .setup(
                        json!({"msgtype": "addcronmsg", "cron": cron}),
                        &self.node.executor,
                    )
                    .await;
                json!({"cronid": added["cronid"]})
            }
            "getcronsmsg" | "getgeneratorsmsg" => json!({"colonyname": "dev", "count": 10}),
            "addgeneratormsg" => json!({"generator": {"colonyname": "dev",
                "name": self.fresh("gen"), "workflowspec": Self::workflow_text(),
                "trigger": 10}}),
            "getgeneratormsg"
            | "packgeneratormsg"
            | "removegeneratormsg"
            | "resolvegeneratormsg" => {
                let name = self.fresh("gen");
                let generator = json!({"colonyname": "dev", "name": name, "trigger": 10,
                                       "workflowspec": Self::workflow_text()});
                let add = json!({"msgtype": "addgeneratormsg", "generator": generator});
                let added = self.setup(add, &self.node.executor).await;
                json!({"generatorid": added["generatorid"], "arg": "a",
                       "colonyname": "dev", "generatorname": name})
            }
            "addlogmsg" => {
                json!({"processid": self.running().await.processid, "message": "line"})
            }
            "addexecutorlogmsg" => {
                json!({"colonyname": "dev", "executorname": "worker", "message": "line"})
            }
            "getlogsmsg" => {
                json!({"colonyname": "dev", "processid": self.waiting().await.processid,
                       "count": 10})
            }
            "searchlogsmsg" => json!({"colonyname": "dev", "text": "x", "days": 1, "count": 10}),
            "addfilemsg" => json!({"file": {"colonyname": "dev", "label": "/authz",
                                            "name": self.fresh("file"), "size": 1}}),
            "getfilemsg" | "removefilemsg" => {
                let name = self.fresh("file");
                let file = json!({"colonyname": "dev", "label": "/authz", "name": name});
                self.setup(
                    json!({"msgtype": "addfilemsg", "file": file}),
                    &self.node.executor,
                )
                .await;
                json!({"colonyname": "dev", "label": "/authz", "name": name, "latest": true})
            }
            "getfilesmsg" => json!({"colonyname": "dev", "label": "/authz"}),
            "getfilelabelsmsg" => json!({"colonyname": "dev", "name": "", "exact": false}),
            "createsnapshotmsg" => {
                json!({"colonyname": "dev", "label": "/authz", "name": self.fresh("snap")})
            }
            "getsnapshotmsg" | "removesnapshotmsg" => {
                let name = self.fresh("snap");
                let create = json!({"msgtype": "createsnapshotmsg", "colonyname": "dev",
                                    "label": "/authz", "name": name});
                self.setup(create, &self.node.executor).await;
                json!({"colonyname": "dev", "name": name})
            }
            "addlocationmsg" => {
                json!({"location": {"name": self.fresh("loc"), "colonyname": "dev"}})
            }
            "getlocationmsg" | "removelocationmsg" => {
                let name = self.fresh("loc");
                let location = json!({"name": name, "colonyname": "dev"});
                let add = json!({"msgtype": "addlocationmsg", "location": location});
                self.setup(add, &self.node.colony).await;
                json!({"colonyname": "dev", "name": name})
            }
            "channelappendmsg" => json!({"processid": self.running().await.processid,
                "name": "chat", "sequence": 1, "payload": "aGk="}),
            "channelreadmsg" => json!({"processid": self.running().await.processid,
                "name": "chat", "afterseq": 0, "limit": 0}),
            "addblueprintdefinitionmsg" => json!({"blueprintdefinition": {
                "metadata": {"name": self.fresh("def"), "colonyname": "dev"},
                "spec": {"names": {"kind": "K"}}}}),
            "getblueprintdefinitionmsg" => {
                let (name, _) = self.definition().await;
                json!({"colonyname": "dev", "name": name})
            }
            "removeblueprintdefinitionmsg" => {
                let (name, _) = self.definition().await;
                json!({"namespace": "dev", "name": name})
            }
            "addblueprintmsg" => {
                let (_, kind) = self.definition().await;
                json!({"blueprint": {"kind": kind,
                    "metadata": {"name": self.fresh("bp"), "colonyname": "dev"},
                    "spec": {"size": 1}}})
            }
            "getblueprintmsg" | "removeblueprintmsg" | "reconcileblueprintmsg" => {
                let b = self.blueprint().await;
                json!({"namespace": "dev", "name": b["metadata"]["name"], "force": false})
            }
            "getblueprintsmsg" => json!({"namespace": "dev", "kind": "", "locationname": ""}),
            "updateblueprintmsg" => {
                let mut b = self.blueprint().await;
                b["spec"] = json!({"size": 2});
                json!({"blueprint": b, "forcegeneration": false})
            }
            "getblueprinthistorymsg" => {
                let b = self.blueprint().await;
                json!({"blueprintid": b["blueprintid"], "limit": 10})
            }
            "updateblueprintstatusmsg" => {
                let b = self.blueprint().await;
                json!({"colonyname": "dev", "blueprintname": b["metadata"]["name"],
                       "status": {"ready": true}})
            }
            other => panic!("no payload for {other}"),
        };
        p["msgtype"] = json!(msgtype);
        p
    }

    /// Undoes what an allowed call changed that later calls rely on.
    async fn restore(&mut self, msgtype: &str) {
        if msgtype == "pauseassignmentsmsg" {
            let resume = json!({"msgtype": "resumeassignmentsmsg", "colonyname": "dev"});
            self.setup(resume, &self.node.colony).await;
        }
    }

    /// Closes every process running on the executor (it may change its id only when idle).
    async fn idle_executor(&mut self) {
        let list = json!({"msgtype": "getprocessesmsg", "colonyname": "dev", "count": 100,
                          "state": ps::RUNNING});
        let running = self.setup(list, &self.node.executor).await;
        let mine = self.node.executor.id();
        for p in running.as_array().into_iter().flatten() {
            if p["assignedexecutorid"] == json!(mine) {
                let close = json!({"msgtype": "closesuccessfulmsg",
                                   "processid": p["processid"], "out": []});
                self.setup(close, &self.node.executor).await;
            }
        }
    }
}

/// Identity changes move the caller to a new key: these payloads name the new id of a key
/// the world keeps, and the world starts using it after an allowed call.
const IDENTITY_CHANGES: [(&str, &str); 4] = [
    ("changeserveridmsg", "serverid"),
    ("changecolonyidmsg", "colonyid"),
    ("changeuseridmsg", "userid"),
    ("changeexecutoridmsg", "executorid"),
];

async fn start() -> World {
    let node = TestNode::start().await;
    let (user, pending, other) = (test_key(), test_key(), test_key());
    let add_user = json!({"msgtype": "addusermsg", "user": {"colonyname": "dev",
        "userid": user.id(), "name": "ann", "email": "", "phone": ""}});
    let world = World {
        node,
        user,
        pending,
        other,
        unknown: test_key(),
        next: 0,
    };
    world.setup(add_user, &world.node.colony).await;
    let pending = json!({"msgtype": "addexecutormsg", "executor": {
        "executorid": world.pending.id(), "executorname": "pending", "executortype": "cli",
        "colonyname": "dev"}});
    world.setup(pending, &world.node.colony).await;
    // Colony "other" with its own approved executor.
    let other_owner = test_key();
    let colony = json!({"msgtype": "addcolonymsg",
                        "colony": {"colonyid": other_owner.id(), "name": "other"}});
    world.setup(colony, &world.node.server).await;
    let executor = json!({"msgtype": "addexecutormsg", "executor": {
        "executorid": world.other.id(), "executorname": "stranger", "executortype": "cli",
        "colonyname": "other"}});
    world.setup(executor, &other_owner).await;
    let approve = json!({"msgtype": "approveexecutormsg", "colonyname": "other",
                         "executorname": "stranger"});
    world.setup(approve, &other_owner).await;
    world
}

/// - every message type x every caller: allowed callers succeed, all others get 403
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_type_allows_exactly_its_roles() {
    let mut world = start().await;
    let mut failures = Vec::new();
    for (msgtype, allowed) in TABLE {
        for caller in ALL {
            let mut payload = world.payload(msgtype).await;
            let new_key = test_key();
            if let Some((_, field)) = IDENTITY_CHANGES.iter().find(|(t, _)| t == msgtype) {
                payload[*field] = json!(new_key.id());
            }
            let outcome = world.send(&payload, world.key(caller)).await;
            let expected_allowed = allowed.contains(&caller);
            let ok = matches!(
                (&outcome, expected_allowed),
                (Ok(_), true) | (Err(403), false)
            );
            if !ok {
                failures.push(format!(
                    "{msgtype} by {caller:?}: got {outcome:?}, expected {}",
                    if expected_allowed { "success" } else { "403" }
                ));
            }
            if outcome.is_ok() {
                if IDENTITY_CHANGES.iter().any(|(t, _)| t == msgtype) {
                    adopt(&mut world, caller, new_key);
                } else {
                    world.restore(msgtype).await;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong outcomes:\n{}",
        failures.len(),
        failures.join("\n")
    );
    world.node.stop().await;
}

/// After an allowed identity change the caller is `key` from now on.
fn adopt(world: &mut World, caller: Caller, key: PrivateKey) {
    match caller {
        User => world.user = key,
        Pending => world.pending = key,
        Executor => world.node.executor = key,
        ColonyOwner => world.node.colony = key,
        ServerOwner => world.node.server = key,
        other => panic!("{other:?} may not change an identity"),
    }
}

/// - the WebSocket-only subscriptions: process subscriptions need a member of the colony (a
///   ColonyOS gap fixed), a channel subscription the process's initiator or executor
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_allow_exactly_their_roles() {
    let mut world = start().await;
    let table: [(&str, &[Caller]); 3] = [
        ("subscribeprocessmsg", M),
        ("subscribeprocessesmsg", M),
        ("subscribechannelmsg", SELF),
    ];
    let mut failures = Vec::new();
    for (msgtype, allowed) in table {
        for caller in ALL {
            let process = world.running().await;
            let payload = json!({
                "msgtype": msgtype, "colonyname": "dev", "processid": process.processid,
                "executortype": "cli", "state": ps::RUNNING, "name": "chat", "afterseq": 0,
                "timeout": 1,
            });
            let request = Request::decode(msgtype, &payload.to_string()).unwrap();
            let mut frames = world
                .client()
                .subscribe(&request, world.key(caller))
                .await
                .unwrap();
            let first = tokio::time::timeout(Duration::from_secs(10), frames.next())
                .await
                .expect("a frame or a close within the subscription's timeout");
            let denied = matches!(first, Some(Err(ClientError::Api { status: 403, .. })));
            if denied == allowed.contains(&caller) {
                failures.push(format!("{msgtype} by {caller:?}: got {first:?}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "wrong outcomes:\n{}",
        failures.join("\n")
    );
    world.node.stop().await;
}
