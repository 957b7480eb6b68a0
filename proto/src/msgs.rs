//! ColonyOS request payloads (`pkg/rpc/*.go`), one struct per field set, and the closed
//! `Request` enum tagged by `msgtype`. Adding a message type means adding one line to
//! `requests!` and handling the new variant in `node::api`.

use crate::blueprint::{Blueprint, BlueprintDefinition};
use crate::channel::Payload;
use crate::colony::{Colony, User};
use crate::cron::{Cron, Generator};
use crate::envelope::EnvelopeError;
use crate::executor::{Allocations, Capabilities, Executor};
use crate::file::File;
use crate::function::{Function, Location};
use crate::lenient::null_default as nd;
use crate::process::{Attribute, FunctionSpec};
use crate::workflow::WorkflowSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A payload with no fields besides `msgtype`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EmptyMsg {}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionMsg {
    #[serde(default, deserialize_with = "nd")]
    pub buildversion: String,
    #[serde(default, deserialize_with = "nd")]
    pub buildtime: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColonyMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colony: Colony,
}

/// `removebanmsg` (a Colonymesh extension): lift the bans of one source address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoveBanMsg {
    #[serde(default, deserialize_with = "nd")]
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColonyNameMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorMsg {
    #[serde(default, deserialize_with = "nd")]
    pub executor: Executor,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorNameMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executorname: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutorIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executorid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserMsg {
    #[serde(default, deserialize_with = "nd")]
    pub user: User,
}

/// A colony and an object name in it (users, locations).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserNameMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub userid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubmitMsg {
    #[serde(default, deserialize_with = "nd")]
    pub spec: FunctionSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AssignMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    /// Seconds: > 0 long-polls, < 0 tries once, 0 is refused.
    #[serde(default, deserialize_with = "nd")]
    pub timeout: i64,
    #[serde(default, deserialize_with = "nd")]
    pub availablecpu: String,
    #[serde(default, deserialize_with = "nd")]
    pub availablemem: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoveProcessMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub all: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CloseSuccessfulMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub out: Vec<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CloseFailedMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetProcessesMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub count: i64,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
    #[serde(default, deserialize_with = "nd")]
    pub executortype: String,
    #[serde(default, deserialize_with = "nd")]
    pub label: String,
    #[serde(default, deserialize_with = "nd")]
    pub initiator: String,
    /// Only the processes of this workflow (sent by pycolonies' `get_processes_for_workflow`).
    #[serde(default, deserialize_with = "nd")]
    pub processgraphid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetProcessHistMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executorid: String,
    #[serde(default, deserialize_with = "nd")]
    pub seconds: i64,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoveAllProcessesMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttributeMsg {
    #[serde(default, deserialize_with = "nd")]
    pub attribute: Attribute,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttributeIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub attributeid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubmitWorkflowMsg {
    #[serde(default, deserialize_with = "nd")]
    pub spec: WorkflowSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessGraphIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processgraphid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoveProcessGraphMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processgraphid: String,
    #[serde(default, deserialize_with = "nd")]
    pub all: bool,
}

/// `getprocessgraphsmsg`, and `removeallprocessgraphsmsg` (which ignores `count`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessGraphsMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub count: i64,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddChildMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processgraphid: String,
    #[serde(default, deserialize_with = "nd")]
    pub parentprocessid: String,
    #[serde(default, deserialize_with = "nd")]
    pub childprocessid: String,
    #[serde(default, deserialize_with = "nd")]
    pub spec: FunctionSpec,
    #[serde(default, deserialize_with = "nd")]
    pub insert: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddFunctionMsg {
    /// ColonyOS's key is `fun`; the `colonyos` Rust crate sends `function`.
    #[serde(default, deserialize_with = "nd", alias = "function")]
    pub fun: Function,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetFunctionsMsg {
    #[serde(default, deserialize_with = "nd")]
    pub executorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub functionid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddLogMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddExecutorLogMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetLogsMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    /// When set, the executor's own log instead of a process's.
    #[serde(default, deserialize_with = "nd")]
    pub executorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub count: i64,
    /// Only lines after this time (Unix ns); 0 = from the start.
    #[serde(default, deserialize_with = "nd")]
    pub since: i64,
    /// The last `count` lines instead of the first.
    #[serde(default, deserialize_with = "nd")]
    pub latest: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchLogsMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub text: String,
    #[serde(default, deserialize_with = "nd")]
    pub days: i64,
    #[serde(default, deserialize_with = "nd")]
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LocationMsg {
    #[serde(default, deserialize_with = "nd")]
    pub location: Location,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateExecutorMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub capabilities: Capabilities,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReportAllocationMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executorname: String,
    #[serde(default, deserialize_with = "nd")]
    pub allocations: Allocations,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeUserIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub userid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeColonyIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub colonyid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeServerIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub serverid: String,
}

/// Reply of `getpausestatusmsg` (sent with payloadtype `pausestatusreplymsg`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PauseStatusReply {
    pub msgtype: String,
    pub colonyname: String,
    pub ispaused: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddCronMsg {
    #[serde(default, deserialize_with = "nd")]
    pub cron: Cron,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CronIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub cronid: String,
    /// Ignored (`removecronmsg`).
    #[serde(default, deserialize_with = "nd")]
    pub all: bool,
}

/// `getcronsmsg` and `getgeneratorsmsg`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColonyCountMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddGeneratorMsg {
    #[serde(default, deserialize_with = "nd")]
    pub generator: Generator,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorIdMsg {
    #[serde(default, deserialize_with = "nd")]
    pub generatorid: String,
    /// Ignored (`removegeneratormsg`).
    #[serde(default, deserialize_with = "nd")]
    pub all: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolveGeneratorMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub generatorname: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PackGeneratorMsg {
    #[serde(default, deserialize_with = "nd")]
    pub generatorid: String,
    #[serde(default, deserialize_with = "nd")]
    pub arg: String,
}

/// `subscribeprocessesmsg` (WebSocket only): processes of a type entering a state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscribeProcessesMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub executortype: String,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
    /// Seconds until the server closes the socket.
    #[serde(default, deserialize_with = "nd")]
    pub timeout: i64,
}

/// `subscribeprocessmsg` (WebSocket only): one process reaching a state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscribeProcessMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub executortype: String,
    #[serde(default, deserialize_with = "nd")]
    pub state: i32,
    #[serde(default, deserialize_with = "nd")]
    pub timeout: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelAppendMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    /// Client-assigned.
    #[serde(default, deserialize_with = "nd")]
    pub sequence: i64,
    #[serde(default, deserialize_with = "nd")]
    pub inreplyto: i64,
    #[serde(default)]
    pub payload: Payload,
    /// "" (data), "end" or "error".
    #[serde(default, deserialize_with = "nd")]
    pub payloadtype: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelReadMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    /// Entries after this index (1-based position; 0 = from the start).
    #[serde(default, deserialize_with = "nd")]
    pub afterseq: i64,
    /// 0 = all (up to the server's limit).
    #[serde(default, deserialize_with = "nd")]
    pub limit: i64,
}

/// `subscribechannelmsg` (WebSocket only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SubscribeChannelMsg {
    #[serde(default, deserialize_with = "nd")]
    pub processid: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub afterseq: i64,
    /// Seconds; 0 means 30 (ColonyOS).
    #[serde(default, deserialize_with = "nd")]
    pub timeout: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddFileMsg {
    #[serde(default, deserialize_with = "nd")]
    pub file: File,
}

/// `getfilemsg` and `removefilemsg`: a file revision by id, or a file by label and name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FileMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub fileid: String,
    #[serde(default, deserialize_with = "nd")]
    pub label: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    /// `getfilemsg`: only the newest revision.
    #[serde(default, deserialize_with = "nd")]
    pub latest: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetFilesMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub label: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetFileLabelsMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    /// Labels under this one (all when empty), or exactly it with `exact`.
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub exact: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateSnapshotMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub label: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
}

/// `getsnapshotmsg` and `removesnapshotmsg`: by id, or by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub snapshotid: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AddBlueprintDefinitionMsg {
    #[serde(default, deserialize_with = "nd")]
    pub blueprintdefinition: BlueprintDefinition,
}

/// A blueprint (or definition) named in a colony, called "namespace" here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamespaceNameMsg {
    #[serde(default, deserialize_with = "nd")]
    pub namespace: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlueprintMsg {
    #[serde(default, deserialize_with = "nd")]
    pub blueprint: Blueprint,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetBlueprintsMsg {
    #[serde(default, deserialize_with = "nd")]
    pub namespace: String,
    #[serde(default, deserialize_with = "nd")]
    pub kind: String,
    #[serde(default, deserialize_with = "nd")]
    pub locationname: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateBlueprintMsg {
    #[serde(default, deserialize_with = "nd")]
    pub blueprint: Blueprint,
    #[serde(default, deserialize_with = "nd")]
    pub forcegeneration: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GetBlueprintHistoryMsg {
    #[serde(default, deserialize_with = "nd")]
    pub blueprintid: String,
    /// 0 = all.
    #[serde(default, deserialize_with = "nd")]
    pub limit: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateBlueprintStatusMsg {
    #[serde(default, deserialize_with = "nd")]
    pub colonyname: String,
    #[serde(default, deserialize_with = "nd")]
    pub blueprintname: String,
    #[serde(default, deserialize_with = "nd")]
    pub status: serde_json::Map<String, Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReconcileBlueprintMsg {
    #[serde(default, deserialize_with = "nd")]
    pub namespace: String,
    #[serde(default, deserialize_with = "nd")]
    pub name: String,
    #[serde(default, deserialize_with = "nd")]
    pub force: bool,
}

macro_rules! requests {
    ($($variant:ident = $name:literal => $msg:ty,)*) => {
        /// Every request payload this node understands, tagged by `msgtype`.
        // One request lives per HTTP call, briefly; boxing variants would buy nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "msgtype")]
        pub enum Request {
            $(#[serde(rename = $name)] $variant($msg),)*
        }

        impl Request {
            /// Every known `msgtype`.
            pub const MSGTYPES: &'static [&'static str] = &[$($name),*];

            /// The wire name of this request.
            pub fn msgtype(&self) -> &'static str {
                match self {
                    $(Request::$variant(_) => $name,)*
                }
            }

            /// Decodes `json` as the payload struct of `payloadtype` (a known type), straight
            /// from the text (the `msgtype` key in it is ignored here, checked by `decode`).
            fn decode_known(payloadtype: &str, json: &str) -> Result<Request, serde_json::Error> {
                match payloadtype {
                    $($name => serde_json::from_str::<$msg>(json).map(Request::$variant),)*
                    other => unreachable!("{other} is checked against MSGTYPES first"),
                }
            }
        }
    };
}

/// Just the `msgtype` of a payload (the rest is skipped without being kept).
#[derive(Deserialize)]
struct Tag<'a> {
    #[serde(default, borrow)]
    msgtype: Option<std::borrow::Cow<'a, str>>,
}

requests! {
    Version = "versionmsg" => VersionMsg,
    GetServerInfo = "getserverinfomsg" => EmptyMsg,
    GetStatistics = "getstatisticsmsg" => EmptyMsg,
    GetCluster = "getclustermsg" => EmptyMsg,
    GetStateDigest = "getstatedigestmsg" => EmptyMsg,
    GetBans = "getbansmsg" => EmptyMsg,
    GetDashboard = "getdashboardmsg" => EmptyMsg,
    RemoveBan = "removebanmsg" => RemoveBanMsg,
    AddColony = "addcolonymsg" => ColonyMsg,
    RemoveColony = "removecolonymsg" => ColonyNameMsg,
    GetColonies = "getcoloniesmsg" => EmptyMsg,
    GetColony = "getcolonymsg" => ColonyNameMsg,
    GetColonyStats = "getcolonystatsmsg" => ColonyNameMsg,
    AddExecutor = "addexecutormsg" => ExecutorMsg,
    GetExecutors = "getexecutorsmsg" => ColonyNameMsg,
    GetExecutor = "getexecutormsg" => ExecutorNameMsg,
    GetExecutorById = "getexecutorbyidmsg" => ExecutorIdMsg,
    ApproveExecutor = "approveexecutormsg" => ExecutorNameMsg,
    RejectExecutor = "rejectexecutormsg" => ExecutorNameMsg,
    RemoveExecutor = "removeexecutormsg" => ExecutorNameMsg,
    AddUser = "addusermsg" => UserMsg,
    GetUsers = "getusersmsg" => ColonyNameMsg,
    GetUser = "getusermsg" => UserNameMsg,
    GetUserById = "getuserbyidmsg" => UserIdMsg,
    RemoveUser = "removeusermsg" => UserNameMsg,
    Submit = "submitfuncspecmsg" => SubmitMsg,
    Assign = "assignprocessmsg" => AssignMsg,
    CloseSuccessful = "closesuccessfulmsg" => CloseSuccessfulMsg,
    CloseFailed = "closefailedmsg" => CloseFailedMsg,
    SetOutput = "setoutputmsg" => CloseSuccessfulMsg,
    GetProcess = "getprocessmsg" => ProcessIdMsg,
    GetProcesses = "getprocessesmsg" => GetProcessesMsg,
    GetProcessHist = "getprocesshistmsg" => GetProcessHistMsg,
    RemoveProcess = "removeprocessmsg" => RemoveProcessMsg,
    RemoveAllProcesses = "removeallprocessesmsg" => RemoveAllProcessesMsg,
    CancelProcess = "cancelprocessmsg" => ProcessIdMsg,
    AddAttribute = "addattributemsg" => AttributeMsg,
    GetAttribute = "getattributemsg" => AttributeIdMsg,
    SubmitWorkflow = "submitworkflowspecmsg" => SubmitWorkflowMsg,
    GetProcessGraph = "getprocessgraphmsg" => ProcessGraphIdMsg,
    GetProcessGraphs = "getprocessgraphsmsg" => ProcessGraphsMsg,
    RemoveProcessGraph = "removeprocessgraphmsg" => RemoveProcessGraphMsg,
    RemoveAllProcessGraphs = "removeallprocessgraphsmsg" => ProcessGraphsMsg,
    CancelProcessGraph = "cancelprocessgraphmsg" => ProcessGraphIdMsg,
    AddChild = "addchildmsg" => AddChildMsg,
    AddFunction = "addfunctionmsg" => AddFunctionMsg,
    GetFunctions = "getfunctionsmsg" => GetFunctionsMsg,
    // Not a ColonyOS type: the `colonyos` Rust crate sends it for `get_functions_by_executor`.
    GetFunctionsByExecutor = "getfunctionsbyexecutormsg" => GetFunctionsMsg,
    RemoveFunction = "removefunctionmsg" => FunctionIdMsg,
    AddLog = "addlogmsg" => AddLogMsg,
    AddExecutorLog = "addexecutorlogmsg" => AddExecutorLogMsg,
    GetLogs = "getlogsmsg" => GetLogsMsg,
    SearchLogs = "searchlogsmsg" => SearchLogsMsg,
    AddLocation = "addlocationmsg" => LocationMsg,
    GetLocations = "getlocationsmsg" => ColonyNameMsg,
    GetLocation = "getlocationmsg" => UserNameMsg,
    RemoveLocation = "removelocationmsg" => UserNameMsg,
    PauseAssignments = "pauseassignmentsmsg" => ColonyNameMsg,
    ResumeAssignments = "resumeassignmentsmsg" => ColonyNameMsg,
    GetPauseStatus = "getpausestatusmsg" => ColonyNameMsg,
    UpdateExecutor = "updateexecutormsg" => UpdateExecutorMsg,
    ReportAllocation = "reportallocationmsg" => ReportAllocationMsg,
    ChangeUserId = "changeuseridmsg" => ChangeUserIdMsg,
    ChangeExecutorId = "changeexecutoridmsg" => ExecutorIdMsg,
    ChangeColonyId = "changecolonyidmsg" => ChangeColonyIdMsg,
    ChangeServerId = "changeserveridmsg" => ChangeServerIdMsg,
    AddCron = "addcronmsg" => AddCronMsg,
    GetCron = "getcronmsg" => CronIdMsg,
    GetCrons = "getcronsmsg" => ColonyCountMsg,
    RunCron = "runcronmsg" => CronIdMsg,
    RemoveCron = "removecronmsg" => CronIdMsg,
    AddGenerator = "addgeneratormsg" => AddGeneratorMsg,
    GetGenerator = "getgeneratormsg" => GeneratorIdMsg,
    ResolveGenerator = "resolvegeneratormsg" => ResolveGeneratorMsg,
    GetGenerators = "getgeneratorsmsg" => ColonyCountMsg,
    PackGenerator = "packgeneratormsg" => PackGeneratorMsg,
    RemoveGenerator = "removegeneratormsg" => GeneratorIdMsg,
    SubscribeProcesses = "subscribeprocessesmsg" => SubscribeProcessesMsg,
    SubscribeProcess = "subscribeprocessmsg" => SubscribeProcessMsg,
    SubscribeChannel = "subscribechannelmsg" => SubscribeChannelMsg,
    ChannelAppend = "channelappendmsg" => ChannelAppendMsg,
    ChannelRead = "channelreadmsg" => ChannelReadMsg,
    AddFile = "addfilemsg" => AddFileMsg,
    GetFile = "getfilemsg" => FileMsg,
    GetFiles = "getfilesmsg" => GetFilesMsg,
    GetFileLabels = "getfilelabelsmsg" => GetFileLabelsMsg,
    RemoveFile = "removefilemsg" => FileMsg,
    CreateSnapshot = "createsnapshotmsg" => CreateSnapshotMsg,
    GetSnapshot = "getsnapshotmsg" => SnapshotMsg,
    GetSnapshots = "getsnapshotsmsg" => ColonyNameMsg,
    RemoveSnapshot = "removesnapshotmsg" => SnapshotMsg,
    RemoveAllSnapshots = "removeallsnapshotmsg" => ColonyNameMsg,
    AddBlueprintDefinition = "addblueprintdefinitionmsg" => AddBlueprintDefinitionMsg,
    GetBlueprintDefinition = "getblueprintdefinitionmsg" => UserNameMsg,
    GetBlueprintDefinitions = "getblueprintdefinitionsmsg" => ColonyNameMsg,
    RemoveBlueprintDefinition = "removeblueprintdefinitionmsg" => NamespaceNameMsg,
    AddBlueprint = "addblueprintmsg" => BlueprintMsg,
    GetBlueprint = "getblueprintmsg" => NamespaceNameMsg,
    GetBlueprints = "getblueprintsmsg" => GetBlueprintsMsg,
    UpdateBlueprint = "updateblueprintmsg" => UpdateBlueprintMsg,
    RemoveBlueprint = "removeblueprintmsg" => NamespaceNameMsg,
    GetBlueprintHistory = "getblueprinthistorymsg" => GetBlueprintHistoryMsg,
    UpdateBlueprintStatus = "updateblueprintstatusmsg" => UpdateBlueprintStatusMsg,
    ReconcileBlueprint = "reconcileblueprintmsg" => ReconcileBlueprintMsg,
}

impl Request {
    /// The payload JSON text (with `msgtype`), as a client Base64-encodes and signs it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("request payloads always serialize")
    }

    /// Decodes payload JSON for `payloadtype`, refusing unknown types and a `msgtype` that
    /// differs from the (unsigned) `payloadtype`.
    pub fn decode(payloadtype: &str, json: &str) -> Result<Request, EnvelopeError> {
        if !Request::MSGTYPES.contains(&payloadtype) {
            return Err(EnvelopeError::UnknownPayloadType(payloadtype.to_string()));
        }
        // Text that is not JSON is refused as such; JSON that is not an object with a string
        // `msgtype` has no msgtype (""), which cannot match.
        let not_json = |e: serde_json::Error| EnvelopeError::Json(e.to_string());
        let msgtype = match serde_json::from_str::<Tag<'_>>(json) {
            Ok(tag) => tag.msgtype.unwrap_or_default(),
            // The wrong shape: refused as JSON only if it is not JSON at all.
            Err(e) if e.classify() == serde_json::error::Category::Data => {
                serde_json::from_str::<serde::de::IgnoredAny>(json).map_err(not_json)?;
                Default::default()
            }
            Err(e) => return Err(not_json(e)),
        };
        if msgtype != payloadtype {
            return Err(EnvelopeError::MsgTypeMismatch {
                msgtype: msgtype.into_owned(),
                payloadtype: payloadtype.to_string(),
            });
        }
        // Straight into the payload's struct: no intermediate `Value`, no buffered content.
        Request::decode_known(payloadtype, json).map_err(|e| EnvelopeError::Fields {
            payloadtype: payloadtype.to_string(),
            reason: e.to_string(),
        })
    }

    /// True for the types served only over the WebSocket `/pubsub`.
    pub fn is_subscription(payloadtype: &str) -> bool {
        matches!(
            payloadtype,
            "subscribeprocessesmsg" | "subscribeprocessmsg" | "subscribechannelmsg"
        )
    }

    /// True for the two types a server answers without a signature.
    pub fn is_unsigned(payloadtype: &str) -> bool {
        matches!(payloadtype, "versionmsg" | "getserverinfomsg")
    }
}

/// Reply of `versionmsg`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionReply {
    pub buildversion: String,
    pub buildtime: String,
    pub msgtype: String,
}

/// One API endpoint in `getserverinfomsg`'s reply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Backend {
    #[serde(rename = "type")]
    pub kind: String,
    pub port: i64,
    pub host: String,
    pub tls: bool,
    pub insecure: bool,
}

/// Reply of `getserverinfomsg`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerInfoReply {
    pub buildversion: String,
    pub buildtime: String,
    pub backends: Vec<Backend>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pycolonies_style_payload_with_spaces_decodes() {
        let json = r#"{"msgtype": "assignprocessmsg", "colonyname": "dev", "timeout": 10,
            "availablecpu": null}"#;
        let Request::Assign(msg) = Request::decode("assignprocessmsg", json).unwrap() else {
            panic!("wrong variant")
        };
        assert_eq!(msg.timeout, 10);
        assert_eq!(msg.availablecpu, "");
    }

    #[test]
    fn out_of_range_field_is_named() {
        let json = r#"{"msgtype":"assignprocessmsg","timeout":"soon"}"#;
        let err = Request::decode("assignprocessmsg", json)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid assignprocessmsg payload:"),
            "{err}"
        );
    }

    /// - the refusals name the problem: not JSON, no or another msgtype, a bad field
    /// - a msgtype that is not a string, or a payload that is not an object, is no msgtype
    #[test]
    fn decoding_refuses_what_is_wrong_with_a_reason() {
        let decode = |json: &str| Request::decode("getcolonymsg", json);
        assert!(matches!(decode("[1,2"), Err(EnvelopeError::Json(_))));
        assert!(matches!(
            decode("{\"msgtype\":"),
            Err(EnvelopeError::Json(_))
        ));
        for json in [
            "[1,2]",
            "{}",
            "{\"msgtype\":7}",
            "{\"msgtype\":\"getcoloniesmsg\"}",
        ] {
            assert!(
                matches!(decode(json), Err(EnvelopeError::MsgTypeMismatch { .. })),
                "{json}"
            );
        }
        let bad_field = r#"{"msgtype":"getcolonymsg","colonyname":[]}"#;
        assert!(matches!(
            decode(bad_field),
            Err(EnvelopeError::Fields { .. })
        ));
        let good = r#"{"colonyname":"dev","msgtype":"getcolonymsg","extra":{"x":[1]}}"#;
        let Ok(Request::GetColony(msg)) = decode(good) else {
            panic!("decodes with msgtype anywhere and unknown fields ignored");
        };
        assert_eq!(msg.colonyname, "dev");
    }

    #[test]
    fn msgtype_is_first_key_when_encoding() {
        let request = Request::GetColonies(EmptyMsg {});
        assert_eq!(request.to_json(), r#"{"msgtype":"getcoloniesmsg"}"#);
    }
}
