//! The web dashboard in a real browser: headless Chromium (Debian's package) loads the pages a
//! node of a 3-node mesh serves and the test reads what they show, with a running workflow.

use proto::mesh::DashboardReply;
use proto::msgs::{AddLogMsg, AssignMsg, CloseSuccessfulMsg, EmptyMsg, SubmitWorkflowMsg};
use proto::workflow::WorkflowSpec;
use proto::{FunctionSpec, ProcessGraph, Request};
use std::path::Path;
use std::time::Duration;
use tests::cluster::Cluster;

fn step(name: &str, after: &[&str]) -> FunctionSpec {
    let mut spec = FunctionSpec {
        nodename: name.into(),
        funcname: name.into(),
        maxwaittime: -1,
        maxexectime: -1,
        maxretries: -1,
        ..FunctionSpec::default()
    };
    spec.conditions.colonyname = "dev".into();
    spec.conditions.executortype = "cli".into();
    spec.conditions.dependencies = after.iter().map(|s| s.to_string()).collect();
    spec
}

/// Chromium from Debian's package (scripts/setup-deps installs it).
fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|path| Path::new(path).exists())
        .expect("headless Chromium is needed: scripts/setup-deps installs Debian's chromium")
}

/// Runs headless Chromium on `url` with `args` (after its scripts settle) and returns stdout.
async fn browse(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=10000", "--window-size=1300,820"])
        .args(args)
        .arg(url)
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(90), command.output())
        .await
        .expect("Chromium finishes")
        .expect("run Chromium");
    assert!(output.status.success(), "Chromium failed on {url}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The text content of `<main>` in a DOM dump, tags stripped.
fn main_text(dom: &str) -> String {
    let main = dom
        .split_once("<main")
        .and_then(|(_, rest)| rest.split_once("</main>"))
        .map_or("", |(main, _)| main);
    let mut text = String::new();
    let mut in_tag = false;
    for c in main.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// - `getdashboardmsg` (server owner) gives the page and its key; the data endpoints refuse a
///   missing or wrong key with 401
/// - in Chromium, with the key: the fleet shows the three nodes and the leader; the workflow
///   view draws the running workflow with each step's state; the process view shows its log;
///   the processes view lists the steps; a wrong key shows the refusal, not data
/// - the node's bare address redirects to the dashboard, which says how to get the key
/// - a screenshot of the workflow view is a real PNG
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_running_workflow_in_chromium() {
    let cluster = Cluster::start(3).await;
    let spec = WorkflowSpec {
        colonyname: "dev".into(),
        functionspecs: vec![
            step("fetch", &[]),
            step("resize", &["fetch"]),
            step("index", &["fetch"]),
            step("publish", &["resize", "index"]),
        ],
    };
    let graph: ProcessGraph = cluster
        .client(0)
        .call(
            &Request::SubmitWorkflow(SubmitWorkflowMsg { spec }),
            &cluster.executor,
        )
        .await
        .unwrap();
    let assign = Request::Assign(AssignMsg {
        colonyname: "dev".into(),
        timeout: 10,
        ..AssignMsg::default()
    });
    let client = cluster.client(1);
    let fetch = client.assign(&assign, &cluster.executor, 10).await.unwrap();
    let close = Request::CloseSuccessful(CloseSuccessfulMsg {
        processid: fetch.processid.clone(),
        out: vec![],
    });
    let _: serde_json::Value = client.call(&close, &cluster.executor).await.unwrap();
    let running = client.assign(&assign, &cluster.executor, 10).await.unwrap();
    let log = Request::AddLog(AddLogMsg {
        processid: running.processid.clone(),
        message: "step 17 of 120 <b>not markup</b>\n".into(),
    });
    let _: serde_json::Value = client.call(&log, &cluster.executor).await.unwrap();

    let node = cluster.node(2);
    let dashboard: DashboardReply = cluster
        .client(2)
        .call(&Request::GetDashboard(EmptyMsg {}), &cluster.server)
        .await
        .unwrap();
    let base = format!("http://{}{}", node.api_addr, dashboard.path);
    let http = reqwest::Client::new();
    let unauthorized = http.get(format!("{base}api/cluster")).send().await.unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    let wrong = http
        .get(format!("{base}api/cluster"))
        .bearer_auth("0".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    let key = &dashboard.key;
    let fleet = main_text(&browse(&format!("{base}?view=fleet#key={key}"), &["--dump-dom"]).await);
    assert!(fleet.contains("Fleet: 3 nodes"), "{fleet}");
    for i in 0..3 {
        assert!(fleet.contains(&cluster.node(i).info.name), "{fleet}");
    }
    assert!(fleet.contains("(leader)"), "{fleet}");

    let workflow_url = format!("{base}?view=workflow&id={}#key={key}", graph.processgraphid);
    let dom = browse(&workflow_url, &["--dump-dom"]).await;
    let workflow = main_text(&dom);
    assert!(workflow.contains(&graph.processgraphid), "{workflow}");
    assert!(workflow.contains("running"), "{workflow}");
    assert_eq!(
        dom.matches("<g class=\"node ").count(),
        4,
        "four steps drawn: {dom}"
    );
    assert!(
        dom.contains("class=\"node state-successful\""),
        "fetch done: {dom}"
    );
    assert!(
        dom.contains("class=\"node state-running\""),
        "one step running: {dom}"
    );
    assert_eq!(
        dom.matches("class=\"node state-waiting\"").count(),
        2,
        "{dom}"
    );
    for name in ["fetch", "resize", "index", "publish"] {
        assert!(workflow.contains(name), "{name} in {workflow}");
    }

    let process_url = format!("{base}?view=process&id={}#key={key}", running.processid);
    let process_dom = browse(&process_url, &["--dump-dom"]).await;
    let process = main_text(&process_dom);
    assert!(process.contains("Log (1 lines)"), "{process}");
    assert!(
        process_dom.contains("step 17 of 120 &lt;b&gt;not markup&lt;/b&gt;"),
        "log text shown as text: {process_dom}"
    );

    let listed = main_text(
        &browse(
            &format!("{base}?view=processes&colony=dev#key={key}"),
            &["--dump-dom"],
        )
        .await,
    );
    assert!(listed.contains("Processes of dev"), "{listed}");
    assert!(listed.matches("waiting").count() >= 2, "{listed}");

    // The node's bare address leads to the dashboard, which says how to get the key.
    let http_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let root = format!("http://{}/", node.api_addr);
    let redirect = http_redirects.get(&root).send().await.unwrap();
    assert_eq!(redirect.status().as_u16(), 307);
    assert_eq!(redirect.headers()["location"], "/ui/");
    let greeting = main_text(&browse(&root, &["--dump-dom"]).await);
    assert!(
        greeting.contains(
            "no dashboard key: run `colonymesh dashboard` with the server owner's key \
             (COLONIES_SERVER_PRVKEY) and open the address it prints"
        ),
        "{greeting}"
    );

    let refused = main_text(&browse(&format!("{base}?view=fleet#key=00"), &["--dump-dom"]).await);
    assert!(refused.contains("wrong dashboard key"), "{refused}");
    assert!(!refused.contains("Fleet:"), "{refused}");

    let shots = tempfile::tempdir().unwrap();
    let shot = shots.path().join("workflow.png");
    browse(
        &workflow_url,
        &[&format!("--screenshot={}", shot.display())],
    )
    .await;
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("COLONYMESH_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&shot, keep).expect("keep the screenshot");
    }
    cluster.shutdown().await;
}
