//! The Docker executor backend: runs a process's command in a container through the Docker
//! Engine API (bollard), streams the container's output lines into the process log, and
//! closes the process with its stdout lines (exit status 0) or with the exit status and the
//! tail of its stderr. Images are never pulled (a mesh has no registry): an image must
//! already be present on the node.
//!
//! ```text
//! spec --plan--> image, argv, env, limits --inspect image--> create (labelled)
//!   --> attach (stdout, stderr) --> start --> every line to the process log, stdout lines
//!   kept as the output --> wait for the exit (maxexectime, else kill)
//!   --> remove (always, also when `run` is dropped)
//! ```
//!
//! The output is read by attaching before the start, as `docker run` does, not by following
//! the logs: Docker 20.10's `logs?follow=1` can end before a last line without a newline.
//!
//! Spec conventions (compatible with the ColonyOS docker executor):
//! - `funcname` is `execute`; kwargs `image` (or `docker-image`) names the image.
//! - kwargs `cmd` as a string runs `/bin/sh -c cmd colonymesh args...` (the spec's args are
//!   `$1`..); as a list of strings it is the argv itself (spec args appended, no shell);
//!   without `cmd` the image's own command runs, with the spec args as its `Cmd`.
//! - The spec's env, plus `COLONIES_PROCESS_ID`; `conditions.cpu` and `conditions.mem`
//!   become the container's cpu and memory limits.
//!
//! The job's work directory is not mounted: a container sees only its image.

use super::job::{Job, LogSink, Outcome};
use super::output::{check_env_name, text, Stderr, Stdout, Stream as _};
use super::output::{STDOUT_BYTES_MAX, STDOUT_EXCEEDED};
use bollard::container::{AttachContainerResults, LogOutput};
use bollard::errors::Error as EngineError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bollard::Docker as Engine;
use futures::StreamExt as _;
use proto::units::{parse_cpu_millis, parse_mem_mib};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// The one function this executor offers.
const FUNCTION: &str = "execute";
/// Where the Docker Engine listens when neither the config nor `DOCKER_HOST` says.
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// bollard's own limit (seconds) on waiting for the headers of any answer.
const ENGINE_REQUEST_SECS: u64 = 120;
/// The bound on every Docker call outside the wait for the container's exit.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// A stderr "line" longer than this (no newline yet) is logged in pieces.
const PENDING_LINE_BYTES_MAX: usize = 64 * 1024;
/// The label carrying the process id on every container this executor makes.
const PROCESS_LABEL: &str = "colonymesh.process";
/// Label naming the executor that made a container: a node killed mid-run cannot remove its
/// containers, so the executor removes what carries its name when it starts again.
const EXECUTOR_LABEL: &str = "colonymesh.executor";
/// The environment variable telling the command its process id.
const PROCESS_ID_ENV: &str = "COLONIES_PROCESS_ID";

/// The Docker executor backend: a client of one Docker Engine.
pub(crate) struct Docker {
    engine: Engine,
    /// The executor's name, put on its containers.
    executor: String,
}

impl Docker {
    /// Connects to the Docker Engine at `socket` (None: `DOCKER_HOST` or
    /// /var/run/docker.sock), negotiates the API version and pings it. The error says Docker
    /// is unavailable and names the socket. Containers an earlier run of `executor` left
    /// behind (its node was killed) are removed.
    pub(crate) async fn connect(socket: Option<&Path>, executor: &str) -> anyhow::Result<Docker> {
        let (engine, at) = match socket {
            Some(path) => {
                let at = path.display().to_string();
                let engine = Engine::connect_with_unix(
                    &at,
                    ENGINE_REQUEST_SECS,
                    bollard::API_DEFAULT_VERSION,
                );
                (engine, at)
            }
            None => match std::env::var("DOCKER_HOST") {
                Ok(host) if !host.trim().is_empty() => (Engine::connect_with_host(&host), host),
                _ => {
                    let engine = Engine::connect_with_unix(
                        DEFAULT_SOCKET,
                        ENGINE_REQUEST_SECS,
                        bollard::API_DEFAULT_VERSION,
                    );
                    (engine, DEFAULT_SOCKET.to_string())
                }
            },
        };
        let unavailable =
            |reason: String| anyhow::anyhow!("docker executor: no Docker Engine at {at}: {reason}");
        let engine = engine.map_err(|error| unavailable(error.to_string()))?;
        let engine = bounded(engine.negotiate_version())
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        bounded(engine.ping())
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        tracing::debug!(socket = %at, version = ?engine.client_version(), "docker engine");
        let docker = Docker {
            engine,
            executor: executor.to_string(),
        };
        docker
            .remove_leftovers()
            .await
            .map_err(|error| unavailable(error.to_string()))?;
        Ok(docker)
    }

    /// Removes every container labelled with this executor's name (none is running yet).
    async fn remove_leftovers(&self) -> Result<(), CallError> {
        let label = format!("{EXECUTOR_LABEL}={}", self.executor);
        let filters = HashMap::from([("label", vec![label])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        let leftovers = bounded(self.engine.list_containers(Some(options))).await?;
        for container in leftovers {
            if let Some(id) = container.id {
                tracing::warn!(executor = %self.executor, container = %id,
                    "removing a container an earlier run left behind");
                remove(&self.engine, &id).await;
            }
        }
        Ok(())
    }

    /// The functions it offers: `["execute"]`.
    pub(crate) fn functions(&self) -> Vec<String> {
        vec![FUNCTION.to_string()]
    }

    /// Runs `job.process` in a new container and removes the container afterwards. Never
    /// panics; every problem becomes `Outcome::Failure` with a clear reason.
    pub(crate) async fn run(&self, job: &Job) -> Outcome {
        let processid = &job.process.processid;
        let plan = match plan(&job.process) {
            Ok(plan) => plan,
            Err(reason) => return Outcome::failure(reason),
        };
        match bounded(self.engine.inspect_image(&plan.image)).await {
            Ok(_) => {}
            Err(error) if error.status() == Some(404) => {
                return Outcome::failure(not_present(&plan.image))
            }
            Err(error) => {
                return Outcome::failure(format!("inspecting image {} failed: {error}", plan.image))
            }
        }
        let name = container_name(processid);
        // Armed before the create: a create that times out may still have made it.
        let mut container = Container {
            engine: self.engine.clone(),
            target: Some(name.clone()),
        };
        let outcome = match self.create(&plan, &name, processid, &mut container).await {
            Ok(id) => {
                container.target = Some(id.clone());
                self.supervise(job, &id).await
            }
            Err(reason) => Outcome::failure(reason),
        };
        container.remove().await;
        outcome
    }

    /// Creates the container; a leftover of an earlier run of the same process (a node that
    /// stopped mid-run) is removed first.
    async fn create(
        &self,
        plan: &Plan,
        name: &str,
        processid: &str,
        container: &mut Container,
    ) -> Result<String, String> {
        let body = container_body(plan, processid, &self.executor);
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let mut leftover_removed = false;
        loop {
            let created = self
                .engine
                .create_container(Some(options.clone()), body.clone());
            match bounded(created).await {
                Ok(created) => {
                    for warning in created.warnings {
                        tracing::debug!(%processid, "docker: {warning}");
                    }
                    return Ok(created.id);
                }
                Err(error) if error.status() == Some(404) => return Err(not_present(&plan.image)),
                Err(error) if error.status() == Some(409) && !leftover_removed => {
                    if self.label_of(name).await.as_deref() != Some(processid) {
                        container.target = None;
                        return Err(format!(
                            "creating the container failed: a container named {name} exists \
                             and does not belong to this process"
                        ));
                    }
                    remove(&self.engine, name).await;
                    leftover_removed = true;
                }
                Err(error) => return Err(format!("creating the container failed: {error}")),
            }
        }
    }

    /// The process label of the container `name`, if it exists.
    async fn label_of(&self, name: &str) -> Option<String> {
        let inspected = bounded(self.engine.inspect_container(name, None))
            .await
            .ok()?;
        inspected.config?.labels?.remove(PROCESS_LABEL)
    }

    /// Starts the container and follows it until it exits or its time is up.
    async fn supervise(&self, job: &Job, id: &str) -> Outcome {
        // Attached before the start, so no output is missed.
        let options = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = match bounded(self.engine.attach_container(id, Some(options))).await {
            Ok(attached) => attached,
            Err(error) => {
                return Outcome::failure(format!("attaching to the container failed: {error}"))
            }
        };
        if let Err(error) = bounded(self.engine.start_container(id, None)).await {
            return Outcome::failure(format!("starting the container failed: {error}"));
        }
        match tokio::time::timeout(job.timeout, self.follow(job, id, attached)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.kill(id).await;
                Outcome::failure(format!(
                    "timed out after {} (maxexectime)",
                    seconds(job.timeout)
                ))
            }
        }
    }

    /// Streams the running container's output into the log until its stdout and stderr
    /// close, then reads its exit status.
    async fn follow(&self, job: &Job, id: &str, attached: AttachContainerResults) -> Outcome {
        // The input half stays open (unused) while the output is read.
        let AttachContainerResults {
            output: mut logs,
            input,
        } = attached;
        // A stdout line is cut only where stdout goes over its bound anyway.
        let mut stdout = Stdout::new(STDOUT_BYTES_MAX + 1);
        let mut stderr = Stderr::new(PENDING_LINE_BYTES_MAX);
        let mut broken = None;
        while let Some(item) = logs.next().await {
            match item {
                Ok(LogOutput::StdOut { message }) => {
                    log(&job.log, stdout.push(&message)).await;
                    if stdout.exceeded() {
                        self.kill(id).await;
                        return Outcome::failure(STDOUT_EXCEEDED);
                    }
                }
                Ok(LogOutput::StdErr { message }) => log(&job.log, stderr.push(&message)).await,
                // Console output comes only with a tty, stdin never.
                Ok(LogOutput::Console { .. } | LogOutput::StdIn { .. }) => {}
                Err(error) => {
                    broken = Some(error.to_string());
                    break;
                }
            }
        }
        drop((logs, input));
        let last = [stdout.finish(), stderr.finish()];
        log(&job.log, last.into_iter().flatten()).await;
        let code = match self.wait(id).await {
            Ok(code) => code,
            Err(reason) => return Outcome::failure(reason),
        };
        if let Some(reason) = broken {
            return Outcome::failure(format!("reading the container's output failed: {reason}"));
        }
        if code == 0 {
            return match stdout.into_lines() {
                Ok(lines) => Outcome::Success(lines.into_iter().map(Value::String).collect()),
                Err(reason) => Outcome::failure(reason),
            };
        }
        let mut status = format!("exit status {code}");
        if self.oom_killed(id).await {
            status.push_str(" (killed: out of memory)");
        }
        stderr.failure(status)
    }

    /// The container's exit status, once it has stopped.
    async fn wait(&self, id: &str) -> Result<i64, String> {
        let mut waiting = self.engine.wait_container(id, None);
        match waiting.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            // bollard turns every non-zero exit into this error.
            Some(Err(EngineError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(error)) => Err(format!("waiting for the container failed: {error}")),
            None => Err("waiting for the container failed: no answer".to_string()),
        }
    }

    /// Whether the kernel killed the container for exceeding its memory limit.
    async fn oom_killed(&self, id: &str) -> bool {
        match bounded(self.engine.inspect_container(id, None)).await {
            Ok(inspected) => inspected
                .state
                .and_then(|state| state.oom_killed)
                .unwrap_or(false),
            Err(_) => false,
        }
    }

    async fn kill(&self, id: &str) {
        match bounded(self.engine.kill_container(id, None)).await {
            // 409: it is not running any more.
            Err(error) if error.status() != Some(409) && error.status() != Some(404) => {
                tracing::warn!(container = id, "killing the container failed: {error}");
            }
            _ => {}
        }
    }
}

/// A container to remove: removed by `remove`, or by a task spawned when dropped before
/// (the `run` future dropped mid-way).
struct Container {
    engine: Engine,
    /// The container's id (its name until it is created); None once removed or not ours.
    target: Option<String>,
}

impl Container {
    async fn remove(mut self) {
        if let Some(target) = self.target.take() {
            remove(&self.engine, &target).await;
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let Some(target) = self.target.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let engine = self.engine.clone();
                runtime.spawn(async move { remove(&engine, &target).await });
            }
            Err(_) => tracing::warn!(container = %target, "container not removed: no runtime"),
        }
    }
}

/// Force-removes a container (and its anonymous volumes); a missing one is fine.
async fn remove(engine: &Engine, target: &str) {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match bounded(engine.remove_container(target, Some(options))).await {
        // 404: already gone; 409: a removal is already under way.
        Err(error) if error.status() != Some(404) && error.status() != Some(409) => {
            tracing::warn!(container = target, "removing the container failed: {error}");
        }
        _ => {}
    }
}

async fn log(sink: &LogSink, lines: impl IntoIterator<Item = String>) {
    for line in lines {
        sink.line(&line).await;
    }
}

/// Why a bounded Docker call failed.
#[derive(Debug)]
enum CallError {
    /// The Engine answered with this HTTP status and message.
    Status(u16, String),
    Other(String),
}

impl CallError {
    fn status(&self) -> Option<u16> {
        match self {
            CallError::Status(status, _) => Some(*status),
            CallError::Other(_) => None,
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Status(status, message) => write!(f, "{message} (status {status})"),
            CallError::Other(reason) => f.write_str(reason),
        }
    }
}

/// Runs one Docker call, bounded by `CALL_TIMEOUT`.
async fn bounded<T>(call: impl Future<Output = Result<T, EngineError>>) -> Result<T, CallError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(EngineError::DockerResponseServerError {
            status_code,
            message,
        })) => Err(CallError::Status(status_code, message)),
        Ok(Err(error)) => Err(CallError::Other(error.to_string())),
        Err(_) => Err(CallError::Other(format!(
            "the Docker Engine did not answer within {}",
            seconds(CALL_TIMEOUT)
        ))),
    }
}

fn not_present(image: &str) -> String {
    format!("image {image} is not present on this node (no registry to pull from)")
}

fn seconds(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// What to run, decided from the spec alone.
#[derive(Debug, PartialEq)]
struct Plan {
    image: String,
    command: Command,
    /// `KEY=VALUE` entries.
    env: Vec<String>,
    nano_cpus: Option<i64>,
    memory_bytes: Option<i64>,
}

#[derive(Debug, PartialEq)]
enum Command {
    /// Run exactly this argv (its first entry becomes the entrypoint).
    Argv(Vec<String>),
    /// Run the image's own entrypoint and command; non-empty args replace its `Cmd`.
    ImageDefault(Vec<String>),
}

fn plan(process: &proto::Process) -> Result<Plan, String> {
    let spec = &process.spec;
    if spec.funcname != FUNCTION {
        return Err(format!(
            "docker executor offers only `{FUNCTION}`, not `{}`",
            spec.funcname
        ));
    }
    let kwargs = spec.kwargs.as_ref();
    let (nano_cpus, memory_bytes) = limits(&spec.conditions)?;
    Ok(Plan {
        image: image(kwargs)?,
        command: command(kwargs, &spec.args)?,
        env: environment(&spec.env, &process.processid)?,
        nano_cpus,
        memory_bytes,
    })
}

fn image(kwargs: Option<&Map<String, Value>>) -> Result<String, String> {
    for key in ["image", "docker-image"] {
        match kwargs.and_then(|kwargs| kwargs.get(key)) {
            None | Some(Value::Null) => {}
            Some(Value::String(image)) if !image.trim().is_empty() => {
                return Ok(image.trim().to_string())
            }
            Some(_) => {
                return Err(format!(
                    "kwargs `{key}` must be a non-empty string naming a Docker image"
                ))
            }
        }
    }
    Err(
        "no image: set kwargs `image` (or `docker-image`) to an image present on this node"
            .to_string(),
    )
}

fn command(kwargs: Option<&Map<String, Value>>, args: &[Value]) -> Result<Command, String> {
    let args = args.iter().map(text);
    match kwargs.and_then(|kwargs| kwargs.get("cmd")) {
        None | Some(Value::Null) => Ok(Command::ImageDefault(args.collect())),
        Some(Value::String(script)) => {
            let shell = ["/bin/sh", "-c", script, "colonymesh"];
            let argv = shell.into_iter().map(str::to_string).chain(args).collect();
            Ok(Command::Argv(argv))
        }
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut argv = Vec::with_capacity(items.len() + args.len());
            for item in items {
                let Value::String(item) = item else {
                    return Err("kwargs `cmd` as a list must hold only strings".to_string());
                };
                argv.push(item.clone());
            }
            argv.extend(args);
            Ok(Command::Argv(argv))
        }
        Some(_) => Err(
            "kwargs `cmd` must be a string (run by /bin/sh -c) or a non-empty list of strings"
                .to_string(),
        ),
    }
}

fn environment(env: &Map<String, Value>, processid: &str) -> Result<Vec<String>, String> {
    let mut entries = Vec::with_capacity(env.len() + 1);
    for (key, value) in env {
        check_env_name(key)?;
        if key != PROCESS_ID_ENV {
            entries.push(format!("{key}={}", text(value)));
        }
    }
    entries.push(format!("{PROCESS_ID_ENV}={processid}"));
    Ok(entries)
}

/// The container's cpu limit (nano cpus) and memory limit (bytes); None: unlimited.
fn limits(conditions: &proto::Conditions) -> Result<(Option<i64>, Option<i64>), String> {
    let millis =
        parse_cpu_millis(&conditions.cpu).map_err(|error| format!("conditions.cpu: {error}"))?;
    let mib = parse_mem_mib(&conditions.mem).map_err(|error| format!("conditions.mem: {error}"))?;
    let too_large = |field: &str, text: &str| format!("conditions.{field} {text:?} is too large");
    let nano_cpus = match millis {
        millis if millis > 0 => Some(
            millis
                .checked_mul(1_000_000)
                .ok_or_else(|| too_large("cpu", &conditions.cpu))?,
        ),
        _ => None,
    };
    let memory_bytes = match mib {
        mib if mib > 0 => Some(
            mib.checked_mul(1024 * 1024)
                .ok_or_else(|| too_large("mem", &conditions.mem))?,
        ),
        _ => None,
    };
    Ok((nano_cpus, memory_bytes))
}

/// `colonymesh-` and the first 16 characters of the process id.
fn container_name(processid: &str) -> String {
    let id: String = processid
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(16)
        .collect();
    format!("colonymesh-{id}")
}

fn container_body(plan: &Plan, processid: &str, executor: &str) -> ContainerCreateBody {
    let (entrypoint, cmd) = match &plan.command {
        Command::Argv(argv) => match argv.split_first() {
            Some((first, rest)) => (Some(vec![first.clone()]), Some(rest.to_vec())),
            None => (None, None),
        },
        Command::ImageDefault(args) if args.is_empty() => (None, None),
        Command::ImageDefault(args) => (None, Some(args.clone())),
    };
    ContainerCreateBody {
        image: Some(plan.image.clone()),
        entrypoint,
        cmd,
        env: Some(plan.env.clone()),
        labels: Some(HashMap::from([
            (PROCESS_LABEL.to_string(), processid.to_string()),
            (EXECUTOR_LABEL.to_string(), executor.to_string()),
        ])),
        attach_stdin: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        open_stdin: Some(false),
        host_config: Some(HostConfig {
            nano_cpus: plan.nano_cpus,
            memory: plan.memory_bytes,
            auto_remove: Some(false),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Client;
    use crate::exec::job::LogWriter;
    use bollard::query_parameters::ListContainersOptionsBuilder;
    use serde_json::json;
    use std::sync::OnceLock;

    const TEST_IMAGE: &str = "colonymesh-test:local";

    fn process(processid: &str, funcname: &str, kwargs: Value, args: Vec<Value>) -> proto::Process {
        let mut process = proto::Process {
            processid: processid.to_string(),
            ..proto::Process::default()
        };
        process.spec.funcname = funcname.to_string();
        process.spec.args = args;
        process.spec.kwargs = match kwargs {
            Value::Object(kwargs) => Some(kwargs),
            _ => None,
        };
        process
    }

    fn kwargs(value: Value) -> Option<Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    // --- the pure helpers, without Docker ---

    #[test]
    fn cmd_string_runs_in_a_shell_with_args_as_positional_parameters() {
        let kwargs = kwargs(json!({"cmd": "echo $1 $2"}));
        let command = command(
            kwargs.as_ref(),
            &[json!("a b"), json!(7), json!({"k": [1]})],
        );
        let argv = [
            "/bin/sh",
            "-c",
            "echo $1 $2",
            "colonymesh",
            "a b",
            "7",
            r#"{"k":[1]}"#,
        ];
        let argv = argv.iter().map(|s| s.to_string()).collect();
        assert_eq!(command, Ok(Command::Argv(argv)));
    }

    #[test]
    fn cmd_list_is_the_argv_with_args_appended() {
        let kwargs = kwargs(json!({"cmd": ["/bin/echo", "x"]}));
        let command = command(kwargs.as_ref(), &[json!("y"), json!(null)]);
        let argv = ["/bin/echo", "x", "y", "null"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(command, Ok(Command::Argv(argv)));
        assert!(command_of(json!({"cmd": []})).is_err());
        assert!(command_of(json!({"cmd": ["/bin/echo", 1]})).is_err());
        assert!(command_of(json!({"cmd": 3})).is_err());
    }

    fn command_of(kwargs_value: Value) -> Result<Command, String> {
        command(kwargs(kwargs_value).as_ref(), &[])
    }

    #[test]
    fn no_cmd_runs_the_image_default_with_args_as_cmd() {
        assert_eq!(command(None, &[]), Ok(Command::ImageDefault(vec![])));
        let kwargs = kwargs(json!({"image": "x", "cmd": null}));
        assert_eq!(
            command(kwargs.as_ref(), &[json!("--flag")]),
            Ok(Command::ImageDefault(vec!["--flag".to_string()]))
        );
    }

    #[test]
    fn image_comes_from_image_or_docker_image() {
        assert_eq!(
            image(kwargs(json!({"image": "a:1"})).as_ref()),
            Ok("a:1".to_string())
        );
        let both = kwargs(json!({"docker-image": "b", "image": "a"}));
        assert_eq!(image(both.as_ref()), Ok("a".to_string()));
        let colonyos = kwargs(json!({"docker-image": "b"}));
        assert_eq!(image(colonyos.as_ref()), Ok("b".to_string()));
        let missing = image(None).expect_err("no image");
        assert!(missing.contains("`image`"), "{missing}");
        let empty = image(kwargs(json!({"image": " "})).as_ref()).expect_err("empty image");
        assert!(empty.contains("`image`"), "{empty}");
    }

    #[test]
    fn env_has_the_spec_env_and_the_process_id() {
        let mut env = Map::new();
        env.insert("A".to_string(), json!("1"));
        env.insert("B".to_string(), json!(2));
        env.insert(PROCESS_ID_ENV.to_string(), json!("forged"));
        assert_eq!(
            environment(&env, "p1"),
            Ok(vec![
                "A=1".to_string(),
                "B=2".to_string(),
                format!("{PROCESS_ID_ENV}=p1")
            ])
        );
        env.insert("C=D".to_string(), json!("x"));
        assert!(environment(&env, "p1").is_err());
    }

    #[test]
    fn limits_come_from_the_conditions() {
        let mut conditions = proto::Conditions::default();
        assert_eq!(limits(&conditions), Ok((None, None)));
        conditions.cpu = "500m".to_string();
        conditions.mem = "256Mi".to_string();
        assert_eq!(
            limits(&conditions),
            Ok((Some(500_000_000), Some(256 << 20)))
        );
        conditions.mem = "1Gi".to_string();
        assert_eq!(limits(&conditions), Ok((Some(500_000_000), Some(1 << 30))));
        conditions.cpu = "xm".to_string();
        let error = limits(&conditions).expect_err("bad cpu");
        assert!(
            error.contains("conditions.cpu") && error.contains("xm"),
            "{error}"
        );
        conditions.cpu = String::new();
        conditions.mem = "12Qi".to_string();
        let error = limits(&conditions).expect_err("bad mem");
        assert!(
            error.contains("conditions.mem") && error.contains("12Qi"),
            "{error}"
        );
        conditions.mem = String::new();
        conditions.cpu = format!("{}m", i64::MAX);
        assert!(limits(&conditions).is_err());
    }

    #[test]
    fn plan_checks_the_function_name() {
        let process = process("p", "run", json!({"image": "x"}), vec![]);
        assert_eq!(
            plan(&process),
            Err("docker executor offers only `execute`, not `run`".to_string())
        );
        let process = self::process("p", "execute", json!({"image": "x"}), vec![]);
        assert!(plan(&process).is_ok());
    }

    #[test]
    fn container_name_and_body() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(container_name(id), "colonymesh-0123456789abcdef");
        assert_eq!(container_name("a/b c"), "colonymesh-abc");
        let plan = Plan {
            image: "i".to_string(),
            command: Command::Argv(vec!["/bin/sh".to_string(), "-c".to_string()]),
            env: vec!["A=1".to_string()],
            nano_cpus: Some(5),
            memory_bytes: None,
        };
        let body = container_body(&plan, id, "n1-docker");
        assert_eq!(body.entrypoint, Some(vec!["/bin/sh".to_string()]));
        assert_eq!(body.cmd, Some(vec!["-c".to_string()]));
        assert_eq!(
            body.labels
                .and_then(|mut labels| labels.remove(PROCESS_LABEL)),
            Some(id.to_string())
        );
        let host = body.host_config.unwrap_or_default();
        assert_eq!(
            (host.nano_cpus, host.memory, host.auto_remove),
            (Some(5), None, Some(false))
        );
    }

    #[test]
    fn seconds_are_readable() {
        assert_eq!(seconds(Duration::from_secs(2)), "2 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }

    // --- against the Docker Engine of this machine ---

    /// Builds the test image once; a machine without Docker fails these tests.
    fn build_test_image() {
        static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
        let built = BUILT.get_or_init(|| {
            let script =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/docker/build-test-image");
            match std::process::Command::new(&script).output() {
                Ok(out) if out.status.success() => Ok(()),
                Ok(out) => Err(format!(
                    "{} failed ({}): {}",
                    script.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
                Err(error) => Err(format!("cannot run {}: {error}", script.display())),
            }
        });
        if let Err(error) = built {
            panic!("the Docker executor tests need a Docker Engine (`docker info`): {error}");
        }
    }

    async fn docker() -> Docker {
        build_test_image();
        // Each test is its own executor: connecting removes the executor's leftovers, which
        // must not be another test's running container.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let executor = format!("unit-tests-{}-{n}", std::process::id());
        match Docker::connect(None, &executor).await {
            Ok(docker) => docker,
            Err(error) => panic!("the Docker executor tests need a Docker Engine: {error:#}"),
        }
    }

    /// A process id of 64 hex characters, unique per test (tests run in parallel, and
    /// several test binaries may run at once).
    fn process_id(test: &str) -> String {
        proto::crypto::sha3_hex(format!("{test} {}", std::process::id()).as_bytes())
    }

    fn job(process: proto::Process, timeout: Duration) -> (Job, LogWriter) {
        let client = Client::new("127.0.0.1", 9, false);
        let key = proto::PrivateKey::from_entropy([7u8; 32]);
        let (log, writer) = LogSink::start(client, key, process.processid.clone());
        let job = Job {
            process,
            timeout,
            work_dir: std::env::temp_dir(),
            log,
        };
        (job, writer)
    }

    /// Runs `process` to its outcome, then checks that its container is gone.
    async fn run(docker: &Docker, process: proto::Process, timeout: Duration) -> Outcome {
        let processid = process.processid.clone();
        let (job, writer) = job(process, timeout);
        let running = tokio::time::timeout(Duration::from_secs(60), docker.run(&job));
        let Ok(outcome) = running.await else {
            panic!("run did not finish within 60 s");
        };
        drop(job);
        writer.finish().await;
        assert_eq!(
            containers_of(docker, &processid).await,
            0,
            "container left behind"
        );
        outcome
    }

    async fn containers_of(docker: &Docker, processid: &str) -> usize {
        let filters = HashMap::from([("label", vec![format!("{PROCESS_LABEL}={processid}")])]);
        let options = ListContainersOptionsBuilder::new()
            .all(true)
            .filters(&filters)
            .build();
        match docker.engine.list_containers(Some(options)).await {
            Ok(list) => list.len(),
            Err(error) => panic!("listing containers failed: {error}"),
        }
    }

    fn execute(test: &str, kwargs: Value, args: Vec<Value>) -> proto::Process {
        let mut kwargs = kwargs;
        if let Value::Object(map) = &mut kwargs {
            map.entry("image").or_insert(json!(TEST_IMAGE));
        }
        process(&process_id(test), "execute", kwargs, args)
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn success_gives_the_stdout_lines() {
        let docker = docker().await;
        let process = execute(
            "success",
            json!({"cmd": "echo first $1; echo to stderr >&2; echo \"$2\""}),
            vec![json!("arg one"), json!({"n": 1})],
        );
        let outcome = run(&docker, process, MINUTE).await;
        assert_eq!(
            outcome,
            Outcome::Success(vec![json!("first arg one"), json!(r#"{"n":1}"#)])
        );
    }

    #[tokio::test]
    async fn cmd_list_runs_without_a_shell() {
        let docker = docker().await;
        let kwargs = json!({"cmd": ["/bin/echo", "$HOME", "a  b"], "docker-image": TEST_IMAGE});
        let process = execute("cmd list", kwargs, vec![json!(3)]);
        let outcome = run(&docker, process, MINUTE).await;
        assert_eq!(outcome, Outcome::Success(vec![json!("$HOME a  b 3")]));
    }

    #[tokio::test]
    async fn no_cmd_runs_the_image_default_command() {
        let docker = docker().await;
        let outcome = run(&docker, execute("default", json!({}), vec![]), MINUTE).await;
        assert_eq!(
            outcome,
            Outcome::Success(vec![json!("colonymesh-test image")])
        );
        let args = vec![json!("/bin/echo"), json!("replaced")];
        let outcome = run(&docker, execute("default args", json!({}), args), MINUTE).await;
        assert_eq!(outcome, Outcome::Success(vec![json!("replaced")]));
    }

    #[tokio::test]
    async fn env_is_passed() {
        let docker = docker().await;
        let mut process = execute(
            "env",
            json!({"cmd": "echo \"$GREETING\" \"$COUNT\"; echo $COLONIES_PROCESS_ID"}),
            vec![],
        );
        process
            .spec
            .env
            .insert("GREETING".to_string(), json!("hello world"));
        process.spec.env.insert("COUNT".to_string(), json!(3));
        let processid = process.processid.clone();
        let outcome = run(&docker, process, MINUTE).await;
        assert_eq!(
            outcome,
            Outcome::Success(vec![json!("hello world 3"), json!(processid)])
        );
    }

    #[tokio::test]
    async fn failure_has_the_exit_status_and_the_stderr_tail() {
        let docker = docker().await;
        let script = "echo out; i=0; while [ $i -lt 25 ]; do echo err $i >&2; i=$((i+1)); done; \
                      printf 'last words' >&2; exit 3";
        let process = execute("failure", json!({ "cmd": script }), vec![]);
        let outcome = run(&docker, process, MINUTE).await;
        let mut expected = vec!["exit status 3".to_string()];
        expected.extend((6..25).map(|n| format!("err {n}")));
        expected.push("last words".to_string());
        assert_eq!(outcome, Outcome::Failure(expected));
    }

    #[tokio::test]
    async fn timeout_kills_the_container() {
        let docker = docker().await;
        let process = execute("timeout", json!({"cmd": "echo started; sleep 30"}), vec![]);
        // `run` bounds the whole run by 60 s; the timeout must end it long before 30 s.
        let ran = tokio::time::timeout(
            Duration::from_secs(20),
            run(&docker, process, Duration::from_secs(2)),
        )
        .await;
        let Ok(outcome) = ran else {
            panic!("the timed-out run took more than 20 s");
        };
        assert_eq!(
            outcome,
            Outcome::failure("timed out after 2 s (maxexectime)")
        );
    }

    #[tokio::test]
    async fn memory_and_cpu_limits_are_set() {
        let docker = docker().await;
        let script = "cat /sys/fs/cgroup/memory.max 2>/dev/null \
                      || cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
                      cat /sys/fs/cgroup/cpu.max 2>/dev/null \
                      || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us";
        let mut process = execute("limits", json!({ "cmd": script }), vec![]);
        process.spec.conditions.mem = "64Mi".to_string();
        process.spec.conditions.cpu = "500m".to_string();
        let outcome = run(&docker, process, MINUTE).await;
        let Outcome::Success(lines) = outcome else {
            panic!("reading the limits failed: {outcome:?}");
        };
        assert_eq!(lines.first(), Some(&json!("67108864")));
        // cgroup v2: "50000 100000"; v1: the quota of a 100000 µs period.
        let cpu = lines.get(1).and_then(Value::as_str).unwrap_or_default();
        assert!(cpu.starts_with("50000"), "cpu limit {cpu:?}");
    }

    #[tokio::test]
    async fn invalid_quantity_fails() {
        let docker = docker().await;
        let mut process = execute("quantity", json!({"cmd": "true"}), vec![]);
        process.spec.conditions.mem = "lots".to_string();
        let outcome = run(&docker, process, MINUTE).await;
        let Outcome::Failure(errors) = outcome else {
            panic!("an invalid quantity ran: {outcome:?}");
        };
        assert!(errors[0].contains("conditions.mem"), "{errors:?}");
    }

    #[tokio::test]
    async fn a_missing_image_fails_clearly() {
        let docker = docker().await;
        let kwargs = json!({"image": "colonymesh-absent:none", "cmd": "true"});
        let outcome = run(&docker, execute("missing image", kwargs, vec![]), MINUTE).await;
        assert_eq!(
            outcome,
            Outcome::failure(
                "image colonymesh-absent:none is not present on this node \
                 (no registry to pull from)"
            )
        );
        let process = process(&process_id("no image"), "execute", json!({}), vec![]);
        let Outcome::Failure(errors) = run(&docker, process, MINUTE).await else {
            panic!("ran without an image");
        };
        assert!(errors[0].contains("`image`"), "{errors:?}");
    }

    #[tokio::test]
    async fn a_missing_executable_fails_clearly() {
        let docker = docker().await;
        let kwargs = json!({"cmd": ["/no/such/program"]});
        let outcome = run(&docker, execute("missing program", kwargs, vec![]), MINUTE).await;
        let Outcome::Failure(errors) = outcome else {
            panic!("ran a missing program: {outcome:?}");
        };
        assert!(errors[0].contains("/no/such/program"), "{errors:?}");
    }

    #[tokio::test]
    async fn other_functions_fail() {
        let docker = docker().await;
        assert_eq!(docker.functions(), vec!["execute".to_string()]);
        let process = process(
            &process_id("funcname"),
            "echo",
            json!({"cmd": "true"}),
            vec![],
        );
        let outcome = run(&docker, process, MINUTE).await;
        assert_eq!(
            outcome,
            Outcome::failure("docker executor offers only `execute`, not `echo`")
        );
    }

    #[tokio::test]
    async fn every_line_arrives_in_order() {
        let docker = docker().await;
        let script = "i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done; \
                      printf 'no newline'";
        let outcome = run(
            &docker,
            execute("many", json!({ "cmd": script }), vec![]),
            MINUTE,
        )
        .await;
        let mut expected: Vec<Value> = (0..3000).map(|n| json!(format!("line {n}"))).collect();
        expected.push(json!("no newline"));
        assert_eq!(outcome, Outcome::Success(expected));
    }

    #[tokio::test]
    async fn stdout_over_one_mib_fails() {
        let docker = docker().await;
        let script = "l=0123456789012345678901234567890123456789012345678901234567890123456789; \
                      i=0; while [ $i -lt 20000 ]; do echo $l; i=$((i+1)); done";
        let outcome = run(
            &docker,
            execute("big", json!({ "cmd": script }), vec![]),
            MINUTE,
        )
        .await;
        assert_eq!(
            outcome,
            Outcome::failure("stdout exceeded 1 MiB; see the process log")
        );
    }

    #[tokio::test]
    async fn a_dropped_run_removes_its_container() {
        let docker = docker().await;
        let process = execute("dropped", json!({"cmd": "sleep 30"}), vec![]);
        let processid = process.processid.clone();
        let (job, writer) = job(process, MINUTE);
        let dropped = tokio::time::timeout(Duration::from_secs(3), docker.run(&job)).await;
        assert!(
            dropped.is_err(),
            "sleep 30 finished within 3 s: {dropped:?}"
        );
        drop(job);
        writer.finish().await;
        for _ in 0..100 {
            if containers_of(&docker, &processid).await == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the container of a dropped run is still there after 10 s");
    }

    #[tokio::test]
    async fn a_leftover_container_of_the_same_process_is_replaced() {
        let docker = docker().await;
        let process = execute("leftover", json!({"cmd": "echo again"}), vec![]);
        let processid = process.processid.clone();
        let plan = plan(&process).unwrap_or_else(|reason| panic!("{reason}"));
        let name = container_name(&processid);
        let options = CreateContainerOptionsBuilder::new().name(&name).build();
        let body = container_body(&plan, &processid, &docker.executor);
        if let Err(error) = docker.engine.create_container(Some(options), body).await {
            panic!("creating the leftover failed: {error}");
        }
        let outcome = run(&docker, process, MINUTE).await;
        assert_eq!(outcome, Outcome::Success(vec![json!("again")]));
    }

    #[tokio::test]
    async fn leftovers_of_this_executor_are_removed_at_connect() {
        let first = docker().await;
        let process = execute("left by a killed node", json!({"cmd": "sleep 30"}), vec![]);
        let processid = process.processid.clone();
        let plan = plan(&process).unwrap_or_else(|reason| panic!("{reason}"));
        let options = CreateContainerOptionsBuilder::new()
            .name(&container_name(&processid))
            .build();
        let body = container_body(&plan, &processid, &first.executor);
        if let Err(error) = first.engine.create_container(Some(options), body).await {
            panic!("creating the leftover failed: {error}");
        }
        assert_eq!(containers_of(&first, &processid).await, 1);
        let again = match Docker::connect(None, &first.executor).await {
            Ok(docker) => docker,
            Err(error) => panic!("connect again: {error:#}"),
        };
        assert_eq!(containers_of(&again, &processid).await, 0, "leftover kept");
    }

    #[tokio::test]
    async fn connecting_to_a_missing_socket_names_it() {
        let socket = Path::new("/nonexistent/docker.sock");
        let Err(error) = Docker::connect(Some(socket), "x").await else {
            panic!("connected to a missing socket");
        };
        let message = format!("{error:#}");
        assert!(
            message.starts_with("docker executor: no Docker Engine at /nonexistent/docker.sock: "),
            "{message}"
        );
    }
}
