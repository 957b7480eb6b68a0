//! The shell executor backend: runs the programs and scripts declared in config as child
//! processes, in their own process group and work directory, with a clean environment,
//! streaming stdout and stderr into the process log and killing the whole group at the
//! deadline. Spec arguments become argv entries; only functions declared as scripts go
//! through `/bin/sh`.

use super::job::{Job, LogSink, Outcome, LOG_LINE_BYTES_MAX};
use super::output::{check_env_name, text, Stderr, Stdout, Stream};
use crate::config::{OutputFormat, ShellFunction};
use crate::host;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::process::Stdio;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// A line longer than the log keeps is cut into pieces (of both streams).
const LINE_BYTES_MAX: usize = LOG_LINE_BYTES_MAX + 1;
/// Most argv entries one process gets.
const ARGS_MAX: usize = 4096;
/// The PATH a function sees.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Switches users for a function when the node runs as root: spawning through it lets std
/// use posix_spawn, where switching users itself makes std fork the whole node (measured:
/// `copy_page_range` was the top of a node's profile at 140 processes/s).
const SETPRIV: &str = "/usr/bin/setpriv";
/// The user functions run as when the node runs as root and config names none.
const DEFAULT_RUN_AS: &str = "nobody";

pub(crate) struct Shell {
    functions: BTreeMap<String, ShellFunction>,
    /// Uid and gid to run as (only when the node runs as root).
    run_as: Option<(u32, u32)>,
    /// Switch users through `SETPRIV` (present on this machine) rather than in the child.
    setpriv: bool,
}

impl Shell {
    /// A shell backend offering `functions`. When the node runs as root, functions run as
    /// `run_as` (default `nobody`); the user must exist.
    pub(crate) fn new(
        functions: BTreeMap<String, ShellFunction>,
        run_as: Option<&str>,
    ) -> anyhow::Result<Shell> {
        let run_as = match host::is_root() {
            true => Some(host::user_ids(run_as.unwrap_or(DEFAULT_RUN_AS))?),
            false => None,
        };
        let setpriv = run_as.is_some() && std::path::Path::new(SETPRIV).exists();
        Ok(Shell {
            functions,
            run_as,
            setpriv,
        })
    }

    pub(crate) fn functions(&self) -> Vec<String> {
        self.functions.keys().cloned().collect()
    }

    pub(crate) async fn run(&self, job: &Job) -> Outcome {
        let funcname = &job.process.spec.funcname;
        match self.functions.get(funcname) {
            Some(function) => self.run_function(job, function).await,
            None => Outcome::failure(format!("function {funcname:?} is not offered here")),
        }
    }

    /// Runs `function` for `job` (the node executor's `exec` has no entry in `functions`).
    pub(crate) async fn run_function(&self, job: &Job, function: &ShellFunction) -> Outcome {
        match argv(function, &job.process.spec.funcname, &job.process) {
            Ok(argv) => self.run_argv(job, &argv, function.output).await,
            Err(reason) => Outcome::failure(reason),
        }
    }

    /// Runs `argv` for `job` in a fresh work directory, removed afterwards.
    async fn run_argv(&self, job: &Job, argv: &[String], output: OutputFormat) -> Outcome {
        if let Err(error) = make_work_dir(job, self.run_as) {
            return Outcome::failure(format!("cannot create work directory: {error}"));
        }
        let outcome = self.spawn_and_wait(job, argv, output).await;
        let dir = job.work_dir.clone();
        let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        if let Ok(Err(error)) = removed {
            tracing::warn!(dir = %job.work_dir.display(), "failed to remove work dir: {error}");
        }
        outcome
    }

    async fn spawn_and_wait(&self, job: &Job, argv: &[String], output: OutputFormat) -> Outcome {
        let env = match environment(job) {
            Ok(env) => env,
            Err(reason) => return Outcome::failure(reason),
        };
        let mut command = match (self.run_as, self.setpriv) {
            (Some((uid, gid)), true) => {
                let mut command = tokio::process::Command::new(SETPRIV);
                let ids = [format!("--reuid={uid}"), format!("--regid={gid}")];
                command.args(ids).args(["--clear-groups", "--"]).args(argv);
                command
            }
            (Some((uid, gid)), false) => {
                let mut command = tokio::process::Command::new(&argv[0]);
                command.args(&argv[1..]).uid(uid).gid(gid);
                command
            }
            (None, _) => {
                let mut command = tokio::process::Command::new(&argv[0]);
                command.args(&argv[1..]);
                command
            }
        };
        command
            .current_dir(&job.work_dir)
            .env_clear()
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => return Outcome::failure(format!("cannot start {}: {error}", argv[0])),
        };
        // Whatever happens next (done, deadline, this future dropped), the group dies.
        let _group = child.id().map(Group);
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Outcome::failure("child has no output pipes");
        };
        let mut out = Stdout::new(LINE_BYTES_MAX);
        let mut err = Stderr::new(LINE_BYTES_MAX);
        let run = async {
            tokio::join!(
                pump(stdout, &job.log, &mut out),
                pump(stderr, &job.log, &mut err)
            );
            child.wait().await
        };
        let status = match tokio::time::timeout(job.timeout, run).await {
            Ok(Ok(status)) => status,
            Ok(Err(error)) => return Outcome::failure(format!("cannot wait for process: {error}")),
            Err(_) => {
                return Outcome::failure(format!(
                    "timed out after {} s (maxexectime); process group killed",
                    job.timeout.as_secs()
                ))
            }
        };
        use std::os::unix::process::ExitStatusExt as _;
        match (status.code(), status.signal()) {
            (Some(0), _) => success(out, output),
            (Some(code), _) => err.failure(format!("exit status {code}")),
            (None, Some(signal)) => err.failure(format!("killed by signal {signal}")),
            (None, None) => err.failure("ended without a status".into()),
        }
    }
}

/// A running process group, killed when dropped (ESRCH, already gone, is fine).
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        if let Err(error) = host::kill_process_group(self.0) {
            tracing::debug!(pgid = self.0, "kill process group: {error}");
        }
    }
}

fn make_work_dir(job: &Job, run_as: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if let Some(parent) = job.work_dir.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&job.work_dir)?;
    if let Some((uid, gid)) = run_as {
        std::os::unix::fs::chown(&job.work_dir, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// The argv of `function` for `process`: a program with its expanded template, or
/// `/bin/sh -c SCRIPT FUNCNAME ARGS...` (so the args are `$1`... and never parsed by a shell).
fn argv(
    function: &ShellFunction,
    funcname: &str,
    process: &proto::Process,
) -> Result<Vec<String>, String> {
    let spec = &process.spec;
    let empty = Map::new();
    let kwargs = spec.kwargs.as_ref().unwrap_or(&empty);
    let mut argv = match (&function.program, &function.script) {
        (Some(program), _) => {
            let mut argv = expand(std::slice::from_ref(program), &spec.args, kwargs)?;
            argv.extend(expand(&function.args, &spec.args, kwargs)?);
            argv
        }
        (None, Some(script)) => {
            let mut argv = vec![
                "/bin/sh".into(),
                "-c".into(),
                script.clone(),
                funcname.into(),
            ];
            argv.extend(spec.args.iter().map(text));
            argv
        }
        (None, None) => return Err(format!("function {funcname:?} has no program")),
    };
    if argv.first().is_none_or(|p| p.is_empty()) {
        return Err(format!("function {funcname:?}: the program is empty"));
    }
    if argv.len() > ARGS_MAX {
        return Err(format!("{} arguments, more than {ARGS_MAX}", argv.len()));
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err("an argument contains a NUL byte".into());
    }
    argv.truncate(ARGS_MAX);
    Ok(argv)
}

/// Expands an argument template (see `ShellFunction::args`).
fn expand(
    template: &[String],
    args: &[Value],
    kwargs: &Map<String, Value>,
) -> Result<Vec<String>, String> {
    let mut argv = Vec::new();
    for item in template {
        let token = item.strip_prefix('{').and_then(|t| t.strip_suffix('}'));
        match token {
            Some("args") => argv.extend(args.iter().map(text)),
            Some(t) if t.ends_with("..") => {
                let from: usize = t[..t.len() - 2]
                    .parse()
                    .map_err(|_| format!("bad template item {item:?}"))?;
                argv.extend(args.iter().skip(from).map(text));
            }
            Some(t) if t.parse::<usize>().is_ok() => {
                let index: usize = t.parse().unwrap_or(usize::MAX);
                let value = args.get(index).ok_or_else(|| {
                    format!("the function needs argument {index}; got {}", args.len())
                })?;
                argv.push(text(value));
            }
            Some(t) if t.starts_with("kwargs.") => {
                let name = &t["kwargs.".len()..];
                let value = kwargs
                    .get(name)
                    .ok_or_else(|| format!("the function needs kwarg {name:?}"))?;
                argv.push(text(value));
            }
            _ => argv.push(item.clone()),
        }
    }
    Ok(argv)
}

/// The environment a function sees: nothing of the node's (which may hold keys), a fixed
/// PATH, the process's id and colony, and the spec's `env`.
fn environment(job: &Job) -> Result<Vec<(String, String)>, String> {
    let process = &job.process;
    let mut env = vec![
        ("PATH".to_string(), PATH.to_string()),
        ("HOME".to_string(), job.work_dir.display().to_string()),
        ("LANG".to_string(), "C.UTF-8".to_string()),
        ("COLONIES_PROCESS_ID".to_string(), process.processid.clone()),
        (
            "COLONIES_COLONY_NAME".to_string(),
            process.spec.conditions.colonyname.clone(),
        ),
    ];
    for (name, value) in &process.spec.env {
        check_env_name(name)?;
        let value = text(value);
        if value.contains('\0') {
            return Err(format!("environment variable {name} contains a NUL byte"));
        }
        env.push((name.clone(), value));
    }
    Ok(env)
}

/// Reads `reader` to its end into `stream`, sending each line it makes to the log.
async fn pump<R: AsyncRead + Unpin>(mut reader: R, log: &LogSink, stream: &mut impl Stream) {
    let mut chunk = vec![0u8; 8192];
    loop {
        let read = match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        for line in stream.push(&chunk[..read]) {
            log.line(&line).await;
        }
    }
    if let Some(line) = stream.finish() {
        log.line(&line).await;
    }
}

/// The outcome of a process that exited 0: its stdout read as `format` says.
fn success(stdout: Stdout, format: OutputFormat) -> Outcome {
    let lines = match stdout.into_lines() {
        Ok(lines) => lines,
        Err(reason) => return Outcome::failure(reason),
    };
    match format {
        OutputFormat::Lines => Outcome::Success(lines.into_iter().map(Value::String).collect()),
        OutputFormat::Json => match serde_json::from_str::<Value>(&lines.join("\n")) {
            Ok(Value::Array(values)) => Outcome::Success(values),
            Ok(value) => Outcome::Success(vec![value]),
            Err(error) => Outcome::failure(format!("stdout is not JSON: {error}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn function(program: &str, args: &[&str]) -> ShellFunction {
        ShellFunction {
            program: Some(program.into()),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..ShellFunction::default()
        }
    }

    fn process(args: Value, kwargs: Value) -> proto::Process {
        let mut process = proto::Process::default();
        process.spec.args = serde_json::from_value(args).unwrap();
        process.spec.kwargs = serde_json::from_value(kwargs).unwrap();
        process
    }

    #[test]
    fn templates_expand_to_argv_entries_without_a_shell() {
        let p = process(json!(["a b", 2, "$(rm -rf /)"]), json!({"name": "x;y"}));
        let f = function(
            "/bin/echo",
            &["-n", "{args}", "{kwargs.name}", "{1..}", "{0}"],
        );
        let argv = argv(&f, "echo", &p).unwrap();
        assert_eq!(
            argv,
            [
                "/bin/echo",
                "-n",
                "a b",
                "2",
                "$(rm -rf /)",
                "x;y",
                "2",
                "$(rm -rf /)",
                "a b"
            ]
        );
    }

    #[test]
    fn scripts_get_args_as_positional_parameters() {
        let p = process(json!(["one", {"k": 1}]), Value::Null);
        let f = ShellFunction {
            script: Some("echo \"$1\"".into()),
            ..ShellFunction::default()
        };
        let argv = argv(&f, "hello", &p).unwrap();
        assert_eq!(
            argv,
            ["/bin/sh", "-c", "echo \"$1\"", "hello", "one", "{\"k\":1}"]
        );
    }

    #[test]
    fn missing_arguments_and_bad_templates_are_named() {
        let p = process(json!(["only"]), Value::Null);
        let missing = argv(&function("/bin/echo", &["{3}"]), "f", &p).unwrap_err();
        assert!(missing.contains("argument 3"), "{missing}");
        let kwarg = argv(&function("/bin/echo", &["{kwargs.x}"]), "f", &p).unwrap_err();
        assert!(kwarg.contains("kwarg \"x\""), "{kwarg}");
        let bad = argv(&function("/bin/echo", &["{x..}"]), "f", &p).unwrap_err();
        assert!(bad.contains("bad template"), "{bad}");
        let nul = process(json!(["a\u{0}b"]), Value::Null);
        let nul = argv(&function("/bin/echo", &["{0}"]), "f", &nul).unwrap_err();
        assert!(nul.contains("NUL"), "{nul}");
    }

    #[test]
    fn json_stdout_is_parsed() {
        let mut out = Stdout::new(LINE_BYTES_MAX);
        out.push(b"[1,\n2]\n");
        assert_eq!(
            success(out, OutputFormat::Json),
            Outcome::Success(vec![json!(1), json!(2)])
        );
        let mut out = Stdout::new(LINE_BYTES_MAX);
        out.push(b"not json\n");
        let outcome = success(out, OutputFormat::Json);
        assert!(matches!(outcome, Outcome::Failure(e) if e[0].contains("not JSON")));
    }
}
