//! Client settings from the `COLONIES_*` environment (the ColonyOS CLI's names).

use crate::client::Client;
use crate::tls::ClientTls;
use anyhow::Context as _;
use proto::PrivateKey;
use std::collections::HashMap;
use std::path::PathBuf;

/// What client commands read from the environment.
#[derive(Clone, Debug)]
pub(crate) struct ClientEnv {
    vars: HashMap<String, String>,
    /// The global `--colony` flag, which wins over `COLONIES_COLONY_NAME`.
    colony: Option<String>,
}

impl ClientEnv {
    pub(crate) fn new(vars: &HashMap<String, String>) -> ClientEnv {
        ClientEnv {
            vars: vars.clone(),
            colony: None,
        }
    }

    /// The same settings with the colony given on the command line, if any.
    pub(crate) fn with_colony(mut self, colony: Option<String>) -> ClientEnv {
        self.colony = colony;
        self
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &str) -> anyhow::Result<&str> {
        self.get(name)
            .with_context(|| format!("environment variable {name} is not set"))
    }

    fn key(&self, name: &str) -> anyhow::Result<PrivateKey> {
        let text = self.required(name)?;
        PrivateKey::from_hex(text).with_context(|| format!("parse {name}"))
    }

    /// Whether to speak TLS (`COLONIES_TLS`, or pycolonies' `COLONIES_SERVER_TLS`) and what
    /// to trust: the system's roots plus `COLONIES_TLS_CA` (a PEM file), or anything with
    /// `COLONIES_TLS_SKIP_VERIFY=true` (development only).
    pub(crate) fn tls(&self) -> Option<ClientTls> {
        let on = self
            .get("COLONIES_TLS")
            .or_else(|| self.get("COLONIES_SERVER_TLS"))
            == Some("true");
        on.then(|| ClientTls {
            ca_file: self.get("COLONIES_TLS_CA").map(PathBuf::from),
            skip_verify: self.get("COLONIES_TLS_SKIP_VERIFY") == Some("true"),
        })
    }

    /// A client for the node named by `COLONIES_SERVER_HOST` and `COLONIES_SERVER_HTTP_PORT`
    /// (or the legacy `COLONIES_SERVER_PORT`), TLS per `tls`.
    pub(crate) fn client(&self) -> anyhow::Result<Client> {
        let (host, port) = self.host_port()?;
        self.client_for(&host, port)
    }

    fn host_port(&self) -> anyhow::Result<(String, u16)> {
        let host = self.get("COLONIES_SERVER_HOST").unwrap_or("localhost");
        let port = self
            .get("COLONIES_SERVER_HTTP_PORT")
            .or_else(|| self.get("COLONIES_SERVER_PORT"))
            .unwrap_or("50080");
        let port: u16 = port
            .parse()
            .with_context(|| format!("parse server port {port:?}"))?;
        Ok((host.to_string(), port))
    }

    /// `http(s)://host:port` of the node in the environment.
    pub(crate) fn base_url(&self) -> anyhow::Result<String> {
        let (host, port) = self.host_port()?;
        let scheme = if self.tls().is_some() {
            "https"
        } else {
            "http"
        };
        Ok(format!("{scheme}://{host}:{port}"))
    }

    /// A client for another node at `host:port`, with the same TLS settings.
    pub(crate) fn client_for(&self, host: &str, port: u16) -> anyhow::Result<Client> {
        Ok(Client::with_tls(host, port, self.tls().as_ref())?)
    }

    /// The caller's key (`COLONIES_PRVKEY`).
    pub(crate) fn prvkey(&self) -> anyhow::Result<PrivateKey> {
        self.key("COLONIES_PRVKEY")
    }

    pub(crate) fn colony_prvkey(&self) -> anyhow::Result<PrivateKey> {
        self.key("COLONIES_COLONY_PRVKEY")
    }

    pub(crate) fn server_prvkey(&self) -> anyhow::Result<PrivateKey> {
        self.key("COLONIES_SERVER_PRVKEY")
    }

    /// The colony (`COLONIES_COLONY_NAME`), unless given on the command line (a command's
    /// own flag, then the global `--colony`).
    pub(crate) fn colony(&self, flag: Option<String>) -> anyhow::Result<String> {
        match flag.or_else(|| self.colony.clone()) {
            Some(name) => Ok(name),
            None => Ok(self.required("COLONIES_COLONY_NAME")?.to_string()),
        }
    }

    /// The executor name (`COLONIES_EXECUTOR_NAME`), unless given on the command line.
    pub(crate) fn executor_name(&self, flag: Option<String>) -> anyhow::Result<String> {
        match flag {
            Some(name) => Ok(name),
            None => Ok(self.required("COLONIES_EXECUTOR_NAME")?.to_string()),
        }
    }

    /// The executor type (`COLONIES_EXECUTOR_TYPE`), unless given on the command line.
    pub(crate) fn executor_type(&self, flag: Option<String>) -> anyhow::Result<String> {
        match flag {
            Some(name) => Ok(name),
            None => Ok(self.required("COLONIES_EXECUTOR_TYPE")?.to_string()),
        }
    }
}
