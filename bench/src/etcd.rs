//! The etcd peer: durable 256-byte puts through etcd's JSON gateway (`POST /v3/kv/put`),
//! from `clients` concurrent clients spread over the members, the same way the Colonymesh
//! `writes` scenario submits processes.

use crate::stats::{Latency, Record};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Size of each value, as in the mission's etcd figures.
const VALUE_BYTES: usize = 256;

/// Puts for `seconds` from `clients` clients; client `i` uses `endpoints[i % len]`.
pub(crate) async fn writes(
    endpoints: &[String],
    clients: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let value = BASE64.encode(vec![b'x'; VALUE_BYTES]);
    let mut tasks = Vec::new();
    for i in 0..clients {
        let url = format!("{}/v3/kv/put", endpoints[i % endpoints.len()]);
        let (http, stop, samples, value) =
            (http.clone(), stop.clone(), samples.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let key = BASE64.encode(format!("bench/{i}/{seq}"));
                let body = serde_json::json!({ "key": key, "value": value });
                let start = Instant::now();
                let sent = http.post(&url).json(&body).send().await;
                if matches!(sent, Ok(response) if response.status().is_success()) {
                    local.push(start.elapsed());
                }
            }
            samples.lock().expect("lock").extend(local);
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let samples = std::mem::take(&mut *samples.lock().expect("lock"));
    anyhow::ensure!(
        !samples.is_empty(),
        "no etcd put succeeded against {endpoints:?}"
    );
    let mut record = Record::new("etcd-3", "writes", clients);
    record.rate = samples.len() as f64 / elapsed;
    record.latency = Latency::of(samples);
    record.emit()
}
