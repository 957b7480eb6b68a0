//! One built-in executor's life: register in the colony (itself, with the colony owner's
//! key; or by waiting for the owner's approval), then `concurrency` workers that long-poll
//! the node for processes, run them on the backend and close them. It survives leader
//! changes (the node forwards), node restarts (the key is kept) and removal (it registers
//! again).

use super::{Backend, Job, LogSink, Outcome, Spec};
use crate::client::{Client, ClientError};
use crate::shutdown::Signal;
use proto::mesh::ExecutorStatus;
use proto::msgs::{
    AddFunctionMsg, AssignMsg, CloseFailedMsg, CloseSuccessfulMsg, ExecutorMsg, ExecutorNameMsg,
};
use proto::{Executor, Function, PrivateKey, Request};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument as _;

/// Seconds one assign long-poll waits on the node.
const LONG_POLL_SECONDS: i64 = 10;
/// Pause after a failed request before trying again.
const RETRY_WAIT: Duration = Duration::from_secs(1);
/// Pauses after a failed registration: the first short (at a node's start the colony is often
/// created a moment later, as `colonymesh dev` does), doubling up to `RETRY_WAIT`.
const REGISTER_RETRY_FIRST: Duration = Duration::from_millis(20);
/// Pause between checks while waiting for the colony owner's approval.
const APPROVAL_WAIT: Duration = Duration::from_secs(2);
/// Attempts to close a process when the node cannot be reached.
const CLOSE_ATTEMPTS: u32 = 5;

/// What a runner reports about itself.
pub(crate) struct Status {
    name: String,
    executortype: String,
    colony: String,
    executorid: String,
    state: Mutex<String>,
    running: AtomicU32,
    /// Registered since the node started (or registration is the colony owner's job).
    registered: AtomicBool,
    /// Woken when `registered` becomes true (shared by the node's executors).
    on_registered: Arc<tokio::sync::Notify>,
}

impl Status {
    pub(crate) fn snapshot(&self) -> ExecutorStatus {
        ExecutorStatus {
            name: self.name.clone(),
            executortype: self.executortype.clone(),
            colonyname: self.colony.clone(),
            executorid: self.executorid.clone(),
            state: self.state.lock().expect("status lock").clone(),
            running: self.running.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn is_registered(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    fn mark_registered(&self) {
        if !self.registered.swap(true, Ordering::AcqRel) {
            self.on_registered.notify_waiters();
        }
    }

    fn set(&self, state: impl Into<String>) {
        let state = state.into();
        let mut current = self.state.lock().expect("status lock");
        if *current != state {
            tracing::info!(executor = %self.name, %state, "executor state");
            *current = state;
        }
    }
}

pub(crate) struct Runner {
    spec: Spec,
    key: PrivateKey,
    client: Client,
    backend: Backend,
    /// Parent of the processes' work directories.
    work: PathBuf,
    status: Arc<Status>,
    /// Known to be registered and approved (with a colony key: registered by us).
    registered: tokio::sync::Mutex<bool>,
    functions_added: AtomicBool,
}

impl Runner {
    pub(crate) fn new(
        spec: Spec,
        key: PrivateKey,
        client: Client,
        backend: Backend,
        work: PathBuf,
        on_registered: Arc<tokio::sync::Notify>,
    ) -> Runner {
        let status = Arc::new(Status {
            name: spec.name.clone(),
            executortype: spec.executortype.clone(),
            colony: spec.colony.clone(),
            executorid: key.id(),
            state: Mutex::new("starting".into()),
            running: AtomicU32::new(0),
            registered: AtomicBool::new(spec.colony_key.is_none()),
            on_registered,
        });
        // Without the colony key, registration is the owner's job: assume it is done and
        // learn otherwise from the first assign.
        let registered = tokio::sync::Mutex::new(spec.colony_key.is_none());
        Runner {
            spec,
            key,
            client,
            backend,
            work,
            status,
            registered,
            functions_added: AtomicBool::new(false),
        }
    }

    pub(crate) fn status(&self) -> Arc<Status> {
        self.status.clone()
    }

    /// Runs the workers until `stop`. A process still running then is abandoned; the mesh
    /// re-queues it (`maxexectime`, or the node's executors being released).
    pub(crate) async fn run(self, stop: Signal) {
        let runner = Arc::new(self);
        let workers = (0..runner.spec.concurrency).map(|_| {
            let runner = runner.clone();
            async move { runner.work_loop().await }
        });
        tokio::select! {
            _ = futures::future::join_all(workers) => {}
            () = stop.wait() => {}
        }
    }

    async fn work_loop(&self) {
        let mut register_retry = REGISTER_RETRY_FIRST;
        loop {
            if !self.ensure_registered().await {
                tokio::time::sleep(register_retry).await;
                register_retry = (register_retry * 2).min(RETRY_WAIT);
                continue;
            }
            register_retry = REGISTER_RETRY_FIRST;
            let request = Request::Assign(AssignMsg {
                colonyname: self.spec.colony.clone(),
                timeout: LONG_POLL_SECONDS,
                ..AssignMsg::default()
            });
            let assigned = self
                .client
                .assign(&request, &self.key, LONG_POLL_SECONDS as u64)
                .await;
            match assigned {
                Ok(process) => {
                    self.status.set("ready");
                    self.add_functions().await;
                    let span = tracing::info_span!(
                        "process",
                        executor = %self.spec.name,
                        process = %process.processid
                    );
                    self.execute(process).instrument(span).await;
                }
                // The long-poll ended without work.
                Err(ClientError::Api { status: 404, .. }) => {
                    self.status.set("ready");
                    self.add_functions().await;
                }
                Err(ClientError::Api {
                    status: 403,
                    message,
                }) => {
                    self.not_a_member(&message).await;
                    tokio::time::sleep(APPROVAL_WAIT).await;
                }
                Err(error) => {
                    self.status.set(format!("error: {error}"));
                    tokio::time::sleep(RETRY_WAIT).await;
                }
            }
        }
    }

    /// The node refused us: registration is needed again (removed, or never approved).
    async fn not_a_member(&self, message: &str) {
        let mut registered = self.registered.lock().await;
        if self.spec.colony_key.is_some() {
            *registered = false;
            self.status.set(format!("registering again: {message}"));
        } else {
            self.status.set(format!(
                "waiting for approval: the colony owner must add and approve executor {} \
                 (id {})",
                self.spec.name,
                self.key.id()
            ));
        }
        self.functions_added.store(false, Ordering::Relaxed);
    }

    /// Registers and approves this executor with the colony key, once (the workers share
    /// the result). False while it fails.
    async fn ensure_registered(&self) -> bool {
        let mut registered = self.registered.lock().await;
        if *registered {
            return true;
        }
        let Some(colony_key) = &self.spec.colony_key else {
            return true;
        };
        match self.register(colony_key).await {
            Ok(()) => {
                *registered = true;
                // Added and approved: it can be assigned work from now on.
                self.status.set("ready");
                self.status.mark_registered();
                true
            }
            Err(error) => {
                self.status.set(format!("error: cannot register: {error}"));
                false
            }
        }
    }

    async fn register(&self, colony_key: &PrivateKey) -> Result<(), ClientError> {
        let executor = Executor {
            executorid: self.key.id(),
            executortype: self.spec.executortype.clone(),
            executorname: self.spec.name.clone(),
            colonyname: self.spec.colony.clone(),
            // The node's site: `fleet run --site` selects by it.
            locationname: self.spec.site.clone(),
            ..Executor::default()
        };
        let by_name = ExecutorNameMsg {
            colonyname: self.spec.colony.clone(),
            executorname: self.spec.name.clone(),
        };
        let add = Request::AddExecutor(ExecutorMsg { executor });
        match self.client.call::<Executor>(&add, colony_key).await {
            Ok(_) => {}
            Err(ClientError::Api { status: 409, .. }) => {
                // Our name is taken: by us (a restart, or an add whose reply was lost), or by
                // an earlier identity of this executor (its key file was lost). Only a member
                // may read it: with our own key the read succeeds exactly when it is us. The
                // name belongs to this node's executor, so another holder is replaced.
                let get = Request::GetExecutor(by_name.clone());
                match self.client.call::<Executor>(&get, &self.key).await {
                    Ok(existing) if existing.executorid == self.key.id() => {}
                    Ok(_) | Err(ClientError::Api { status: 403, .. }) => {
                        let remove = Request::RemoveExecutor(by_name.clone());
                        self.client.call::<Value>(&remove, colony_key).await?;
                        self.client.call::<Executor>(&add, colony_key).await?;
                    }
                    Err(error) => return Err(error),
                }
            }
            Err(error) => return Err(error),
        }
        let approve = Request::ApproveExecutor(by_name);
        self.client.call::<Value>(&approve, colony_key).await?;
        Ok(())
    }

    /// Adds the backend's functions to the registry once per registration.
    async fn add_functions(&self) {
        if self.functions_added.swap(true, Ordering::Relaxed) {
            return;
        }
        for funcname in self.backend.functions() {
            let fun = Function {
                executorname: self.spec.name.clone(),
                executortype: self.spec.executortype.clone(),
                colonyname: self.spec.colony.clone(),
                funcname: funcname.clone(),
                locationname: String::new(),
                ..Function::default()
            };
            let request = Request::AddFunction(AddFunctionMsg { fun });
            match self.client.call::<Value>(&request, &self.key).await {
                Ok(_) | Err(ClientError::Api { status: 409, .. }) => {}
                Err(error) => {
                    tracing::warn!(executor = %self.spec.name, %funcname,
                        "failed to register function: {error}");
                    self.functions_added.store(false, Ordering::Relaxed);
                }
            }
        }
    }

    async fn execute(&self, process: proto::Process) {
        self.status.running.fetch_add(1, Ordering::Relaxed);
        let processid = process.processid.clone();
        let timeout = match u64::try_from(process.spec.maxexectime) {
            Ok(seconds) if seconds > 0 => Duration::from_secs(seconds),
            _ => self.spec.max_exec,
        };
        let (log, writer) =
            LogSink::start(self.client.clone(), self.key.clone(), processid.clone());
        let job = Job {
            work_dir: self.work.join(&processid),
            process,
            timeout,
            log,
        };
        tracing::debug!("running");
        let outcome = self.backend.run(&job).await;
        drop(job);
        writer.finish().await;
        self.close(&processid, outcome).await;
        self.status.running.fetch_sub(1, Ordering::Relaxed);
    }

    async fn close(&self, processid: &str, outcome: Outcome) {
        let request = match outcome {
            Outcome::Success(out) => Request::CloseSuccessful(CloseSuccessfulMsg {
                processid: processid.to_string(),
                out,
            }),
            Outcome::Failure(errors) => Request::CloseFailed(CloseFailedMsg {
                processid: processid.to_string(),
                errors,
            }),
        };
        for attempt in 1..=CLOSE_ATTEMPTS {
            match self.client.call::<Value>(&request, &self.key).await {
                Ok(_) => return,
                Err(error @ ClientError::Transport { .. }) if attempt < CLOSE_ATTEMPTS => {
                    tracing::debug!(%processid, "close failed, retrying: {error}");
                    tokio::time::sleep(RETRY_WAIT).await;
                }
                // Refused (e.g. the mesh re-queued it meanwhile) or out of attempts: the
                // mesh's deadlines decide what becomes of the process.
                Err(error) => {
                    tracing::warn!(executor = %self.spec.name, %processid,
                        "failed to close process: {error}");
                    return;
                }
            }
        }
    }
}
